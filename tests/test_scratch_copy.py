"""The scratch copy of the deployed commit (`runners.scratch_copy`, `KeptRelease.make`): where a
release group's shared database is downgraded after its owner's own redeploy when the owner
keeps no releases. The commands as built (pure), and `make` and `remove` run on a real local
checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from bot.steps import database
from bot.steps.database.commands import makes_scratch_copy, scratch_copy_dir
from bot.workflow.errors import UserFacingError
from bot.workflow.group import Downgrade, step_order
from bot.workflow.model import StepId
from bot.workflow.steps import ORDER
from runners import scratch_copy
from tests.fakes import app_config, apps_file

SHA = "d4e5f6a1b2c3" + "0" * 28


def app(workdir: str = "/srv/myapp", **deploy: Any) -> Any:
    config = app_config("/tmp/repo.git", [{"name": "web1", "address": "10.0.0.1"}], workdir)
    config["deploy"].update(deploy)
    config["database"] = {
        "run_on": "web1",
        "alembic": "{workdir}/.venv/bin/alembic -c alembic.ini",
        "backup": "pg_dump -f {backup}",
    }
    return apps_file("myapp", config).apps["myapp"]


def test_where_it_goes_and_what_it_refuses() -> None:
    assert scratch_copy.directory("/srv/a/", "f00d42", False) == (
        "/srv/a/.git/rewind-downgrade-f00d42"
    )
    assert scratch_copy.directory("/srv/a", "f00d42", True) == (
        "/srv/a/releases/.rewind-downgrade-f00d42"
    )
    for bad in ("../x", "a b", "x;rm -rf /", ""):
        with pytest.raises(UserFacingError, match="cannot name a scratch directory"):
            scratch_copy.directory("/srv/a", bad, False)
    for sha in ("v1.5.0", "abc", "d4e5f6a; rm -rf /", "HEAD"):
        with pytest.raises(UserFacingError, match="is not a commit id"):
            scratch_copy.make("/srv/a", sha, "/srv/a/.git/rewind-downgrade-x")
    with pytest.raises(UserFacingError, match="is not a valid workdir"):
        scratch_copy.make("/srv/my app", SHA, "/srv/my app/.git/rewind-downgrade-x")
    made = scratch_copy.make("/srv/a", SHA.upper(), "/srv/a/.git/rewind-downgrade-x")
    assert made.startswith(f"cd /srv/a && git cat-file -e '{SHA}^{{commit}}' && ")
    assert f"git archive --format=tar -o /srv/a/.git/rewind-downgrade-x.tar {SHA} " in made
    # The marker is written last, into the copy being built, which then moves into place.
    assert made.endswith(
        f"&& printf '%s\\n' {SHA} > /srv/a/.git/rewind-downgrade-x.new/.rewind-release"
        " && rm -rf -- /srv/a/.git/rewind-downgrade-x"
        " && mv -T /srv/a/.git/rewind-downgrade-x.new /srv/a/.git/rewind-downgrade-x"
    )


def test_the_downgrade_runs_in_the_copy_reads_its_marker_first_and_removes_it_last() -> None:
    a = app()
    assert a.database is not None
    copy = database.scratch_copy(a, a.database, "f00d42", "v1.5.0", SHA)
    where = "/srv/myapp/.git/rewind-downgrade-f00d42"
    assert (copy.directory, copy.scratch, copy.words) == (where, True, "scratch copy of v1.5.0")
    script = database.commands.downgrade_script(a, a.database, "b2c3d4e5f6a1", copy)
    assert script.names == ["kept", "current", "downgrade", "after", "remove"]
    lines = {line.name: line.command for line in script}
    assert lines["kept"] == f"cat {where}/.rewind-release 2>/dev/null || true"
    # `{workdir}` in the alembic template names the copy, where the command runs.
    assert lines["downgrade"] == (
        f"cd {where} && {where}/.venv/bin/alembic -c alembic.ini downgrade b2c3d4e5f6a1"
    )
    assert lines["remove"] == f"rm -rf -- {where} {where}.new {where}.tar"
    assert [p.name for p in script.planned()] == [
        "scratch copy marker",
        "alembic current",
        "downgrade",
        "alembic current",
        "remove scratch copy",
    ]
    spaced = app("/srv/my app")
    assert spaced.database is not None
    with pytest.raises(UserFacingError, match="is not a valid workdir"):
        database.scratch_copy(spaced, spaced.database, "f00d42", "v1.5.0", SHA)
    # Made by Prepare, after the backup check; alembic read in it at once.
    cmds = database.prepare_commands(a, a.database, "/b/x.sql", "d4e5f6a1b2c3", None, copy)
    names = cmds.script("alembic current").names
    assert names.index("check") + 1 == names.index("scratch copy")
    assert names.index("scratch copy") + 1 == names.index("scratch current")
    assert cmds.scratch == copy.make and cmds.scratch_current is not None
    assert cmds.scratch_current.startswith(f"cd {where} && {where}/.venv/bin/alembic")
    plain = database.prepare_commands(a, a.database, "/b/x.sql", "d4e5f6a1b2c3", None)
    assert "scratch copy" not in plain.script("alembic current").names
    # With `deploy.releases: 1`, beside the releases, made from `current`.
    one = app(releases=1)
    assert one.database is not None
    assert scratch_copy_dir(one, one.database, "f00d42") == (
        "/srv/myapp/releases/.rewind-downgrade-f00d42"
    )
    made = database.scratch_copy(one, one.database, "f00d42", "v1.5.0", SHA).make
    assert made is not None and made.startswith("cd /srv/myapp/current && ")


def test_who_makes_one() -> None:
    late = step_order(ORDER, Downgrade("db", "myapp", ("myapp",), ("myapp",), scratch=True))
    assert makes_scratch_copy(app(), late)
    assert makes_scratch_copy(app(releases=1), late)
    assert not makes_scratch_copy(app(releases=2), late)  # its kept release instead
    assert not makes_scratch_copy(app(), list(ORDER))  # downgraded before its redeploy
    assert StepId.DB_ROLLBACK in late


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_make_and_remove_on_a_real_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "myapp"
    checkout.mkdir()
    git(checkout, "init", "-q")
    (checkout / "migrations").mkdir()
    (checkout / "migrations" / "v150.py").write_text("newer\n")
    (checkout / "alembic.ini").write_text("[alembic]\n")
    git(checkout, "add", ".")
    git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1.5.0")
    sha = git(checkout, "rev-parse", "HEAD")
    # The host's own files, untracked; then the checkout moves on (as a redeploy would).
    (checkout / ".db_url").write_text("postgresql://db\n")
    (checkout / ".rewind-release").write_text("live\n")
    git(checkout, "rm", "-q", "migrations/v150.py")
    git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1.4.2")
    where = checkout / ".git" / "rewind-downgrade-f00d42"
    for _ in range(2):  # a second run replaces the first whole
        subprocess.run(["sh", "-c", scratch_copy.make(str(checkout), sha, str(where))], check=True)
    assert (where / "migrations" / "v150.py").read_text() == "newer\n"  # the commit's, not HEAD's
    assert (where / ".db_url").is_symlink() and (
        where / ".db_url"
    ).read_text() == "postgresql://db\n"
    assert not (where / ".git").exists()
    assert (where / ".rewind-release").read_text() == sha + "\n"
    assert (checkout / ".rewind-release").read_text() == "live\n"  # never written through
    marker = subprocess.run(["sh", "-c", scratch_copy.marker(str(where))], capture_output=True)
    assert marker.stdout.decode().strip() == sha
    assert git(checkout, "status", "--porcelain") == "?? .db_url\n?? .rewind-release".strip()
    subprocess.run(["sh", "-c", scratch_copy.remove(str(where))], check=True)
    assert not where.exists() and not Path(f"{where}.new").exists()
    # A commit that is not there: nothing is made, and it says so.
    bad = subprocess.run(
        ["sh", "-c", scratch_copy.make(str(checkout), "0" * 40, str(where))], capture_output=True
    )
    assert bad.returncode != 0 and not where.exists()
