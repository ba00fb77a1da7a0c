"""Committing the incident report (GitPython) in the checkout it is written to, and pushing it
when there is a remote."""

from __future__ import annotations

import asyncio
from pathlib import Path

from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError
from git.repo import Repo

from bot.ports import Committed
from runners.git_clone import IDENTITY, _batch_env

PUSH_TIMEOUT = 60


def _repo_for(directory: Path) -> Repo | None:
    try:
        repo = Repo(directory, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None
    if repo.bare or repo.working_tree_dir is None:
        return None
    return repo


def _identity(repo: Repo) -> dict[str, str]:
    """Rewind's identity, used only when the incidents repository has none of its own."""
    reader = repo.config_reader()
    configured = reader.get_value("user", "name", "") and reader.get_value("user", "email", "")
    return {} if configured else IDENTITY


def commit_files(paths: list[Path], message: str) -> Committed:
    """Commit exactly `paths` (absolute; nothing else staged), then push when there is a remote.

    Blocking (GitPython); call it in a thread."""
    repo = _repo_for(paths[0].parent)
    if repo is None:
        return Committed(None, note="not a git checkout: written, not committed")
    with repo:
        root = Path(str(repo.working_tree_dir)).resolve()
        rel = [str(p.resolve().relative_to(root)) for p in paths]
        git = repo.git
        git.update_environment(**_batch_env(), **_identity(repo))
        ignored = git.check_ignore("--", *rel, with_exceptions=False).strip()
        if ignored:
            return Committed(None, note="ignored by git there: written, not committed")
        git.add("--", *rel)
        if not git.status("--porcelain", "--", *rel).strip():
            last = git.log("-n", "1", "--format=%H", "--", *rel).strip()
            return Committed(last or None, note="unchanged since the last commit")
        # `--only` leaves whatever a person had staged out of the bot's commit.
        git.commit("--no-verify", "--only", "-m", message, "--", *rel)
        sha = repo.head.commit.hexsha
        if not repo.remotes:
            return Committed(sha, note="no remote: committed, not pushed")
        return _push(repo, sha)


def _push(repo: Repo, sha: str) -> Committed:
    if repo.head.is_detached:
        return Committed(sha, push_error="HEAD is detached: no branch to push")
    branch = repo.active_branch
    tracking = branch.tracking_branch()
    if tracking is not None:
        remote, dest = tracking.remote_name, tracking.remote_head
    else:
        names = [r.name for r in repo.remotes]
        remote, dest = ("origin" if "origin" in names else names[0]), branch.name
    try:
        repo.git.push(remote, f"HEAD:refs/heads/{dest}", kill_after_timeout=PUSH_TIMEOUT)
    except GitCommandError as exc:
        why = (exc.stderr or str(exc)).strip().splitlines()
        return Committed(sha, push_error=why[-1] if why else "push failed")
    return Committed(sha, pushed=True)


# Two workers finishing incidents at once would race for the index lock.
_DIRECTORY_LOCKS: dict[Path, asyncio.Lock] = {}


async def commit_report(paths: list[Path], message: str) -> Committed:
    """`commit_files` in a thread, one commit at a time per directory; git's failure to commit
    is said in the result (the report is written either way)."""
    lock = _DIRECTORY_LOCKS.setdefault(paths[0].parent, asyncio.Lock())
    async with lock:
        try:
            return await asyncio.to_thread(commit_files, paths, message)
        except GitCommandError as exc:
            why = (exc.stderr or str(exc)).strip().splitlines()
            return Committed(None, note="commit failed: " + (why[-1] if why else "?"))
