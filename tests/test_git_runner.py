"""The bot's clone, on a real bare origin with merges and tags (bot.sample.build)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.sample.build import SampleRepo, git
from bot.workflow.errors import StepError, UserFacingError
from runners.git import AppRepo, RevertConflict, hotfix_branch, redact
from runners.git_commit import commit_files

HOOK = """#!/bin/sh
while read old new ref; do
  case "$ref" in
    refs/heads/hotfix/*) echo "GL-HOOK-ERR: hotfix branches are protected on this server"; exit 1;;
  esac
done
"""


def protect_hotfix_branches(origin: Path) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(HOOK)
    hook.chmod(0o755)


@pytest.fixture
async def repo(sample_repo: SampleRepo, tmp_path: Path) -> AppRepo:
    clone = AppRepo(str(sample_repo.origin), tmp_path / "workspace" / "repos" / "myapp")
    assert await clone.sync() == []
    return clone


def work_clone(origin: Path, tmp_path: Path, name: str = "dev") -> Path:
    path = tmp_path / name
    git(["clone", "--quiet", str(origin), str(path)], tmp_path)
    return path


async def test_resolve_versions(repo: AppRepo, sample_repo: SampleRepo) -> None:
    tags = sample_repo.tags
    assert await repo.resolve("v1.5.0") == tags["v1.5.0"]
    assert await repo.resolve("main") == tags["v1.5.0"]  # a branch on origin
    assert await repo.resolve(tags["v1.4.2"][:8]) == tags["v1.4.2"]
    assert await repo.resolve(f"v1.4.2-0-g{tags['v1.4.2'][:7]}") == tags["v1.4.2"]  # describe
    assert await repo.resolve("v1.5.0-dirty") == tags["v1.5.0"]
    assert await repo.resolve("v9.9.9") is None
    with pytest.raises(UserFacingError):
        await repo.resolve("v1; rm -rf /")
    with pytest.raises(UserFacingError):
        await repo.resolve("--upload-pack=evil")
    assert await repo.previous_tag("v1.5.0") == "v1.4.2"
    assert await repo.previous_tag("v1.4.2") == "v1.4.0"
    assert await repo.previous_tag("v1.4.0") is None
    assert (await repo.recent_tags())[:1] == ["v1.5.0"]


async def test_commits_between_is_git_log_oneline(repo: AppRepo, sample_repo: SampleRepo) -> None:
    commits = await repo.commits_between("v1.4.2", "v1.5.0")
    expected = git(["log", "--oneline", "v1.4.2..v1.5.0"], sample_repo.origin).splitlines()
    assert [c.oneline() for c in commits] == expected
    assert [c.sha for c in commits if c.is_merge] == sample_repo.merges[::-1]
    assert commits[0].subject == "Release 1.5.0"


async def test_plan_recommends_revert_and_branch_matches_target(
    repo: AppRepo, sample_repo: SampleRepo, tmp_path: Path
) -> None:
    target, deployed = sample_repo.tags["v1.4.2"], sample_repo.tags["v1.5.0"]
    plan = await repo.plan(target, deployed)
    assert plan.methods == ("revert", "tag")
    assert plan.recommended == "revert"
    assert "2 merges and 1 other commit" in plan.reason
    assert [c.subject for c in plan.reverts] == [
        "Release 1.5.0",
        "Merge branch 'feature/coupon-campaigns'",
        "Merge branch 'feature/order-coupons'",
    ]
    branch = hotfix_branch("myapp", "v1.4.2", "INC-7")
    assert branch == "hotfix/rollback-myapp-v1.4.2-INC-7"
    sha = await repo.create_hotfix(branch, target, deployed, "revert")
    await repo.push(branch)

    origin = sample_repo.origin
    assert git(["rev-parse", f"refs/heads/{branch}"], origin) == sha
    assert git(["rev-parse", f"{branch}^{{tree}}"], origin) == git(
        ["rev-parse", "v1.4.2^{tree}"], origin
    )
    log = git(["log", "--format=%s|%an|%P", f"v1.5.0..{branch}"], origin).splitlines()
    assert [line.split("|")[0] for line in log] == [
        "Revert \"Merge branch 'feature/order-coupons'\"",
        "Revert \"Merge branch 'feature/coupon-campaigns'\"",
        'Revert "Release 1.5.0"',
    ]
    assert all(line.split("|")[1] == "Rewind" for line in log)
    assert all(len(line.split("|")[2].split()) == 1 for line in log)  # reverts, not merges
    assert "BROKEN = False" in git(["show", f"{branch}:app.py"], origin)
    assert await repo.remote_branch(branch) == sha
    assert await repo.is_rollback(sha, target, deployed)
    assert not await repo.is_rollback(deployed, target, deployed)


async def test_tag_method_and_tag_only_plans(repo: AppRepo, sample_repo: SampleRepo) -> None:
    tags = sample_repo.tags
    feature = await repo.resolve("feature/order-coupons")
    assert feature is not None
    # Reachable only through a merge's second parent: reverting cannot land exactly on it.
    plan = await repo.plan(feature, tags["v1.5.0"])
    assert plan.methods == ("tag",)
    assert "main line" in plan.reason
    newer = await repo.plan(tags["v1.5.0"], tags["v1.4.2"])
    assert newer.methods == ("tag",)
    same = await repo.plan(tags["v1.5.0"], tags["v1.5.0"])
    assert same.methods == ("tag",) and same.commits == []
    with pytest.raises(StepError, match="main line"):
        await repo.create_hotfix("hotfix/x", feature, tags["v1.5.0"], "revert")

    sha = await repo.create_hotfix("hotfix/rollback-myapp-v1.4.2-T", tags["v1.4.2"], "x", "tag")
    await repo.push("hotfix/rollback-myapp-v1.4.2-T")
    assert sha == tags["v1.4.2"]
    assert (
        git(["rev-parse", "refs/heads/hotfix/rollback-myapp-v1.4.2-T"], sample_repo.origin) == sha
    )


async def test_revert_conflict_leaves_clone_clean(
    repo: AppRepo, sample_repo: SampleRepo, tmp_path: Path
) -> None:
    dev = work_clone(sample_repo.origin, tmp_path)
    app = (dev / "app.py").read_text()
    (dev / "app.py").write_text(app.replace("BROKEN = True", "BROKEN = True  # hotfixed later"))
    git(["commit", "--quiet", "-am", "Tweak the flag"], dev)
    git(["push", "--quiet", "origin", "main"], dev)
    await repo.sync()
    head = await repo.resolve("main")
    assert head is not None
    coupons_merge = next(c for c in await repo.commits_between("v1.4.2", head) if c.is_merge)
    # Reverting that merge alone, under the commit that edits its lines, cannot apply.
    with pytest.raises(RevertConflict, match="does not apply cleanly") as err:
        await repo._thread(repo._revert_onto, head, [coupons_merge], None)
    assert err.value.files == ["app.py"]
    assert git(["status", "--porcelain"], repo.path) == ""
    assert not (repo.path / ".git" / "REVERT_HEAD").exists()
    # The whole main line, newest first, still reverts cleanly back to v1.4.2.
    plan = await repo.plan(sample_repo.tags["v1.4.2"], head)
    assert plan.recommended == "revert", plan.reason


async def test_empty_commit_is_skipped(sample_repo: SampleRepo, tmp_path: Path) -> None:
    dev = work_clone(sample_repo.origin, tmp_path)
    git(["commit", "--quiet", "--allow-empty", "-m", "Trigger CI"], dev)
    git(["tag", "v1.5.1"], dev)
    git(["push", "--quiet", "origin", "main", "v1.5.1"], dev)
    repo = AppRepo(str(sample_repo.origin), tmp_path / "clone")
    await repo.sync()
    target, deployed = sample_repo.tags["v1.4.2"], await repo.resolve("v1.5.1")
    assert deployed is not None
    plan = await repo.plan(target, deployed)
    assert plan.recommended == "revert", plan.reason
    sha = await repo.create_hotfix("hotfix/e", target, deployed, "revert")
    assert git(["rev-parse", f"{sha}^{{tree}}"], repo.path) == git(
        ["rev-parse", "v1.4.2^{tree}"], repo.path
    )


async def test_sync_fetches_resets_and_refuses_strangers(
    repo: AppRepo, sample_repo: SampleRepo, tmp_path: Path
) -> None:
    dev = work_clone(sample_repo.origin, tmp_path)
    (dev / "NEWS").write_text("1.5.1\n")
    git(["add", "NEWS"], dev)
    git(["commit", "--quiet", "-m", "News"], dev)
    git(["tag", "-a", "v1.5.1", "-m", "1.5.1"], dev)
    git(["push", "--quiet", "--follow-tags", "origin", "main"], dev)
    git(["push", "--quiet", "origin", ":refs/tags/v1.4.0"], dev)
    assert await repo.resolve("v1.5.1") is None
    (repo.path / "app.py").write_text("tampered\n")
    (repo.path / "stray.txt").write_text("x\n")
    notes = await repo.sync()
    assert len(notes) == 1 and "app.py" in notes[0] and "discarded" in notes[0]
    assert git(["status", "--porcelain"], repo.path) == ""
    assert await repo.resolve("v1.5.1") == git(["rev-parse", "v1.5.1^{commit}"], dev)
    assert await repo.resolve("v1.4.0") is None  # pruned: it is gone from origin

    other = AppRepo("/somewhere/else.git", repo.path)
    with pytest.raises(StepError, match="comes from"):
        await other.sync()
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "file").write_text("x")
    with pytest.raises(StepError, match="not a git clone"):
        await AppRepo(str(sample_repo.origin), junk).sync()


async def test_unreachable_origin(tmp_path: Path) -> None:
    repo = AppRepo(str(tmp_path / "missing.git"), tmp_path / "clone")
    with pytest.raises(StepError, match="cannot be reached") as err:
        await repo.sync()
    assert "repo" in err.value.hint


async def test_push_refused_by_server_hook(repo: AppRepo, sample_repo: SampleRepo) -> None:
    protect_hotfix_branches(sample_repo.origin)
    branch = "hotfix/rollback-myapp-v1.4.2-INC-9"
    await repo.create_hotfix(branch, sample_repo.tags["v1.4.2"], sample_repo.tags["v1.5.0"], "tag")
    with pytest.raises(StepError) as err:
        await repo.push(branch)
    assert "origin refused it" in err.value.what
    assert "hotfix branches are protected on this server" in err.value.hint
    assert await repo.remote_branch(branch) is None


async def test_files_at_reads_without_checkout(repo: AppRepo) -> None:
    files = await repo.files_at("v1.4.2", "alembic/versions")
    assert sorted(Path(p).name[:12] for p in files) == ["a1b2c3d4e5f6", "b2c3d4e5f6a1"]
    assert all(p.startswith("alembic/versions/") for p in files)
    assert "revision: str = " in next(iter(files.values()))
    assert await repo.files_at("v1.4.2", "no/such/dir") == {}
    with pytest.raises(StepError):
        await repo.files_at("v9.9.9", "alembic/versions")


def test_redact() -> None:
    assert redact("https://bot:s3cret@git.example.com/a.git") == "https://***@git.example.com/a.git"
    assert redact("git@github.com:acme/a.git") == "git@github.com:acme/a.git"


async def test_a_relative_workspace_clones_once_where_it_says(
    sample_repo: SampleRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default REWIND_WORKSPACE is `var`, relative to where the bot was started; the clone
    # used to land in var/repos-check/var/repos-check/myapp, and the next sync failed.
    monkeypatch.chdir(tmp_path)
    origin = sample_repo.origin
    for _ in range(2):
        clone = AppRepo(str(origin), Path("var/repos-check/myapp"))
        assert await clone.sync() == []
        assert await clone.resolve("v1.4.2") == sample_repo.tags["v1.4.2"]
    assert (tmp_path / "var/repos-check/myapp/.git").is_dir()
    assert not (tmp_path / "var/repos-check/var").exists()


def test_paths_in_settings_and_apps_file_are_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.config.apps_file import parse_apps
    from bot.config.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings.model_validate({"REWIND_WORKSPACE": "var", "REWIND_CONFIG": "c/a.yaml"})
    assert settings.workspace == tmp_path / "var"
    assert settings.config_path == tmp_path / "c" / "a.yaml"
    app = {
        "repo": "repos/myapp.git",
        "incident_channel": "C1",
        "ssh": {"known_hosts": "keys/known_hosts", "client_keys": ["keys/id"]},
        "approvers": ["U0ALICE", "U0BOB"],
        "hosts": [{"name": "web1", "address": "127.0.0.1"}],
        "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
    }
    remote = {**app, "repo": "git@github.com:acme/myapp.git"}
    apps = parse_apps({"apps": {"a": app, "b": remote}, "incidents": {"dir": "inc/"}}, "x")
    a = apps.apps["a"]
    assert a.repo == str(tmp_path / "repos" / "myapp.git")
    assert a.ssh.known_hosts == str(tmp_path / "keys" / "known_hosts")
    assert a.ssh.client_keys == [str(tmp_path / "keys" / "id")]
    assert apps.incidents.dir == str(tmp_path / "inc")
    assert apps.apps["b"].repo == "git@github.com:acme/myapp.git"


def test_the_report_commit_uses_the_operators_git_ssh_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One git adapter: the report's push goes through GIT_SSH_COMMAND like every other."""
    fake_ssh = tmp_path / "fake-ssh"
    used = tmp_path / "ssh-used"
    fake_ssh.write_text(f'#!/bin/sh\necho "$@" > {used}\nexit 255\n')
    fake_ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(fake_ssh))
    work = tmp_path / "incidents"
    work.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["remote", "add", "origin", "ssh://git@example.invalid/acme/incidents.git"],
    ):
        subprocess.run(["git", *args], cwd=work, check=True)
    report = work / "rollback.md"
    report.write_text("# Incident report\n")
    committed = commit_files([report], "Incident report")
    assert committed.sha and not committed.pushed
    assert committed.push_error  # the push failed, and says so
    assert "example.invalid" in used.read_text()  # through the operator's ssh command
