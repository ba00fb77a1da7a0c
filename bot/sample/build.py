"""Build the sample app's origin: a bare git repository with a realistic release history.

History of `main` (oldest first)::

    v1.4.0  Initial import of myapp                  (migration a1b2c3d4e5f6)
            Add orders table                          (migration b2c3d4e5f6a1)
    v1.4.2  Release 1.4.2                             healthy
            Merge branch 'feature/order-coupons'      (migration c3d4e5f6a1b2)
            Merge branch 'feature/coupon-campaigns'   (migration d4e5f6a1b2c3, BROKEN = True)
    v1.5.0  Release 1.5.0                             broken: /healthz answers 500
    [irreversible=True]
            Merge branch 'feature/audit-log'          (migration e5f6a1b2c3d4, no downgrade)
    v1.6.0  Release 1.6.0

Author, committer and dates are fixed, so the same call always yields the same commit ids.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

APP_TEMPLATE = "app"
VERSIONS_DIR = Path("alembic") / "versions"

IDENTITY = {
    "GIT_AUTHOR_NAME": "Dana Developer",
    "GIT_AUTHOR_EMAIL": "dana@example.com",
    "GIT_COMMITTER_NAME": "Dana Developer",
    "GIT_COMMITTER_EMAIL": "dana@example.com",
}
_EPOCH = 1714644000  # 2024-05-02 10:00:00 UTC


@dataclass(frozen=True)
class SampleRepo:
    """The built origin. `tags` maps every tag to its commit id; `merges` lists the merge
    commits between `good` and `bad`, oldest first."""

    origin: Path
    tags: dict[str, str]
    merges: list[str]
    good: str = "v1.4.2"
    bad: str = "v1.5.0"
    migrations: dict[str, list[str]] = field(default_factory=dict)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for git that ignores the user's and the system's git config."""
    env = dict(os.environ)
    env.update(
        {
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            **IDENTITY,
        }
    )
    if extra:
        env.update(extra)
    return env


def git(args: Sequence[str], cwd: Path, *, env: Mapping[str, str] | None = None) -> str:
    """Run git and return its stripped stdout; raise RuntimeError with stderr on failure."""
    cmd = ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args]
    proc = subprocess.run(
        cmd, cwd=cwd, env=git_env(env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def template_dir() -> Path:
    """Directory of the packaged sample app files."""
    return Path(str(resources.files("bot.sample"))) / APP_TEMPLATE


def migration_file(revision: str) -> Path:
    """The packaged migration file of `revision` (in the app template or a later release's)."""
    bases = [template_dir() / VERSIONS_DIR, Path(str(resources.files("bot.sample"))) / "migrations"]
    for base in bases:
        matches = sorted(base.glob(f"{revision}_*.py"))
        if matches:
            return matches[0]
    raise FileNotFoundError(f"no packaged migration {revision} in {bases}")


def _copy_template(dest: Path, migrations: Sequence[str]) -> None:
    src = template_dir()
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        is_migration = rel.parent == VERSIONS_DIR and path.suffix == ".py"
        if is_migration and path.name.split("_", 1)[0] not in migrations:
            continue
        target = dest / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    (dest / VERSIONS_DIR).mkdir(parents=True, exist_ok=True)


def _add_migration(work: Path, revision: str) -> None:
    src = migration_file(revision)
    shutil.copy2(src, work / VERSIONS_DIR / src.name)


def _set_broken(work: Path, broken: bool) -> None:
    app = work / "app.py"
    text = app.read_text(encoding="utf-8")
    old, new = (
        ("BROKEN = False", "BROKEN = True") if broken else ("BROKEN = True", "BROKEN = False")
    )
    if old not in text and new not in text:
        raise RuntimeError("app.py template has no BROKEN flag")
    app.write_text(text.replace(old, new), encoding="utf-8")


def _set_version(work: Path, version: str) -> None:
    (work / "VERSION").write_text(version + "\n", encoding="utf-8")


class _History:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.tick = 0

    def _dates(self) -> dict[str, str]:
        self.tick += 1
        stamp = f"{_EPOCH + self.tick * 86400} +0000"
        return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}

    def git(self, *args: str) -> str:
        return git(args, self.work, env=self._dates())

    def commit(self, message: str) -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, message: str) -> None:
        self.git("tag", "-a", name, "-m", message)

    def merge(self, branch: str, title: str) -> str:
        self.git("checkout", "--quiet", "main")
        self.git("merge", "--quiet", "--no-ff", "-m", f"Merge branch '{branch}'\n\n{title}", branch)
        return self.git("rev-parse", "HEAD")


def build_sample_origin(root: Path, *, irreversible: bool = False) -> SampleRepo:
    """Create `root/origin.git` (bare) holding myapp's history and return what it contains.

    `root` may exist; `root/origin.git` must not. With `irreversible=True` the history also
    has v1.6.0, whose migration e5f6a1b2c3d4 cannot be downgraded.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    origin = root / "origin.git"
    if origin.exists():
        raise FileExistsError(f"{origin} already exists")
    work = root / ".origin-src"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    git(["init", "--quiet", "--bare", "--initial-branch=main", str(origin)], root)
    git(["init", "--quiet", "--initial-branch=main", str(work)], root)
    h = _History(work)

    _copy_template(work, ["a1b2c3d4e5f6"])
    _set_broken(work, False)
    _set_version(work, "1.4.0")
    h.commit("Initial import of myapp\n\nHTTP service, run.sh, smoke tests and the users table.")
    h.tag("v1.4.0", "myapp 1.4.0")

    _add_migration(work, "b2c3d4e5f6a1")
    h.commit("Add orders table")
    _set_version(work, "1.4.2")
    h.commit("Release 1.4.2")
    h.tag("v1.4.2", "myapp 1.4.2")

    h.git("checkout", "--quiet", "-b", "feature/order-coupons")
    _add_migration(work, "c3d4e5f6a1b2")
    h.commit("Add coupon column to orders")
    h.merge("feature/order-coupons", "Orders can carry a coupon code (PR #41).")

    h.git("checkout", "--quiet", "-b", "feature/coupon-campaigns")
    _add_migration(work, "d4e5f6a1b2c3")
    h.commit("Create coupons table")
    _set_broken(work, True)
    h.commit("Validate coupons in the health check")
    h.merge("feature/coupon-campaigns", "Coupon campaigns (PR #42).")

    _set_version(work, "1.5.0")
    h.commit("Release 1.5.0")
    h.tag("v1.5.0", "myapp 1.5.0")

    migrations = {
        "v1.4.0": ["a1b2c3d4e5f6"],
        "v1.4.2": ["a1b2c3d4e5f6", "b2c3d4e5f6a1"],
        "v1.5.0": ["a1b2c3d4e5f6", "b2c3d4e5f6a1", "c3d4e5f6a1b2", "d4e5f6a1b2c3"],
    }
    if irreversible:
        h.git("checkout", "--quiet", "-b", "feature/audit-log")
        _add_migration(work, "e5f6a1b2c3d4")
        h.commit("Audit log; drop orders.total_cents")
        h.merge("feature/audit-log", "Audit log (PR #57).")
        _set_version(work, "1.6.0")
        h.commit("Release 1.6.0")
        h.tag("v1.6.0", "myapp 1.6.0")
        migrations["v1.6.0"] = [*migrations["v1.5.0"], "e5f6a1b2c3d4"]

    h.git("checkout", "--quiet", "main")
    h.git("push", "--quiet", "--follow-tags", str(origin), "main")
    for branch in h.git("for-each-ref", "--format=%(refname:short)", "refs/heads/feature").split():
        h.git("push", "--quiet", str(origin), branch)

    tags = {
        name: git(["rev-parse", f"{name}^{{commit}}"], origin)
        for name in git(["tag", "--list"], origin).split()
    }
    merges = git(["rev-list", "--merges", "--reverse", "v1.4.2..v1.5.0"], origin).split()
    shutil.rmtree(work)
    return SampleRepo(origin=origin, tags=tags, merges=merges, migrations=migrations)
