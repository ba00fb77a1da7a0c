"""Check the sample app out on a host directory and start or stop it there."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bot.sample.build import git

EXCLUDES = [
    ".rewind-release",
    ".port",
    ".db_url",
    ".pg_url",
    "app.log",
    "app.pid",
    "app.db",
    "*.sql",
    "__pycache__/",
    "nohup.out",
]


def libpq_url(db_url: str) -> str:
    """`postgresql+psycopg://u@h/db` -> `postgresql://u@h/db` (what psql and pg_dump take)."""
    return re.sub(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://", r"\1://", db_url)


def provision_host_checkout(
    origin: Path, workdir: Path, *, ref: str, app_port: int, db_url: str | None
) -> None:
    """Clone `origin` into `workdir` (absent or empty), check out `ref` (detached) and write
    the host-local files: `.port`, and with `db_url` also `.db_url` (SQLAlchemy URL) and, for
    PostgreSQL, `.pg_url` (plain libpq URL). They are git-excluded, so `git status` stays clean.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    git(["clone", "--quiet", "--no-checkout", str(origin), str(workdir)], workdir.parent)
    git(["checkout", "--quiet", "--force", "--detach", ref], workdir)
    exclude = workdir / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a", encoding="utf-8") as fh:
        fh.write("# host-local files of myapp\n" + "\n".join(EXCLUDES) + "\n")
    (workdir / ".port").write_text(f"{app_port}\n", encoding="utf-8")
    if db_url:
        (workdir / ".db_url").write_text(db_url + "\n", encoding="utf-8")
        if db_url.startswith("postgres"):
            (workdir / ".pg_url").write_text(libpq_url(db_url) + "\n", encoding="utf-8")


# The host's own files in a releases layout: kept once in `shared/`, linked into each release.
SHARED = [".port", ".db_url", ".pg_url", "app.log", "app.pid"]
MARKER = ".rewind-release"  # runners.releases.MARKER: the release is complete


def provision_host_releases(
    origin: Path,
    base: Path,
    *,
    ref: str,
    app_port: int,
    db_url: str | None,
    kept: Sequence[str] = (),
) -> Path:
    """The releases layout (`deploy.releases`) in `base`: `releases/<ref>` checked out and
    marked complete, `current` -> it, and `shared/` holding the host-local files, which each
    release links to (a new release is copied from `current`, links and all). `kept`: older
    releases made first, as earlier deploys would have left them. Returns `ref`'s directory."""
    base = Path(base)
    for older in kept:
        _release(origin, base, ref=older, app_port=app_port, db_url=db_url)
    release = _release(origin, base, ref=ref, app_port=app_port, db_url=db_url)
    current = base / "current"
    current.unlink(missing_ok=True)
    current.symlink_to(Path("releases", release.name))
    return release


def app_dir(workdir: Path) -> Path:
    """Where the app's files are: `workdir/current` in a releases layout, else `workdir`."""
    current = Path(workdir) / "current"
    return current if current.is_dir() else Path(workdir)


def _release(origin: Path, base: Path, *, ref: str, app_port: int, db_url: str | None) -> Path:
    shared = base / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    release = base / "releases" / ref.replace("/", "+")
    provision_host_checkout(origin, release, ref=ref, app_port=app_port, db_url=db_url)
    for name in SHARED:
        own = release / name
        if own.exists() and not own.is_symlink():
            own.replace(shared / name)
        own.unlink(missing_ok=True)
        own.symlink_to(Path("..", "..", "shared", name))
    head = git(["rev-parse", "HEAD"], release)
    (release / MARKER).write_text(head.strip() + "\n", encoding="utf-8")
    return release


def _run_sh(workdir: Path, action: str) -> str:
    proc = subprocess.run(
        ["./run.sh", action],
        cwd=app_dir(workdir),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"run.sh {action} in {workdir} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


def start_app(workdir: Path) -> str:
    """`./run.sh start` in `workdir`; returns its output, raises RuntimeError on failure."""
    return _run_sh(Path(workdir), "start")


def stop_app(workdir: Path) -> str:
    """`./run.sh stop` in `workdir`; returns its output, raises RuntimeError on failure."""
    return _run_sh(Path(workdir), "stop")
