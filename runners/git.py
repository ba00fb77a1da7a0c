"""The bot's own clone of an app's repository (GitPython): find versions, build the hotfix
branch that undoes a release, push it.

GitPython blocks, so every public method runs it in a thread. The clone is the bot's alone:
local changes in it are discarded, and nothing is ever taken from a local branch — versions
come from origin's tags and branches, or from a commit id.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar

from git.cmd import Git
from git.exc import (
    BadName,
    GitCommandError,
    GitError,
    InvalidGitRepositoryError,
    NoSuchPathError,
)
from git.objects import Blob
from git.repo import Repo

from bot.config.apps_file import AppConfig
from bot.config.paths import absolute
from bot.workflow.errors import StepError, UserFacingError
from bot.workflow.facts import CommitFact
from bot.workflow.version import Version, is_version

Method = Literal["revert", "tag"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

IDENTITY = {
    "GIT_AUTHOR_NAME": "Rewind",
    "GIT_AUTHOR_EMAIL": "rewind@localhost",
    "GIT_COMMITTER_NAME": "Rewind",
    "GIT_COMMITTER_EMAIL": "rewind@localhost",
}


def _batch_env() -> dict[str, str]:
    # Never wait for a password or a host-key answer: nobody is at the bot's terminal. An
    # operator's own GIT_SSH_COMMAND (e.g. with a deploy key) wins.
    ssh = os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": ssh}


def _quiet_env() -> dict[str, str]:
    return {**_batch_env(), **IDENTITY}


_CONFIG = ["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]
_HEX = re.compile(r"^[0-9a-f]{4,40}$")
_DESCRIBE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*-[0-9]+-g[0-9a-f]{4,40}$")
# user:password@ in any URL, and a bare token@ in an http(s) URL (https://ghp_x@github.com).
_CREDENTIALS = re.compile(r"://[^/@\s:]*:[^/@\s]+@|(?<=https://)[^/@\s]+@|(?<=http://)[^/@\s]+@")

_AUTH = (
    "permission denied",
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "host key verification failed",
    "returned error: 401",
    "returned error: 403",
    "invalid username or password",
)
_UNREACHABLE = (
    "does not appear to be a git repository",
    "does not exist",
    "couldn't connect",
    "could not resolve host",
    "connection refused",
    "connection timed out",
    "unable to access",
    "repository not found",
    "could not read from remote repository",
    "no such file or directory",
    "network is unreachable",
)
_REFUSED = (
    "protected branch",
    "gh006",
    "hook declined",
    "remote rejected",
    "pre-receive",
)


def redact(text: str) -> str:
    """Hide a password or token written into a repository URL."""
    return _CREDENTIALS.sub(lambda m: "://***@" if m.group().startswith("://") else "***@", text)


def clone_dir(workspace: Path, kind: str, app: str, url: str) -> Path:
    """Where the bot keeps its `kind` clone of `app` from `url`: one per app and URL, so a repo
    that moves to another host is simply cloned afresh."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return workspace / kind / f"{app}-{digest}"


def git_said(output: str, limit: int = 400) -> str:
    """git's own words (redacted), the lines that say what went wrong, for a person to read."""
    lines = [line.strip() for line in redact(output).splitlines() if line.strip()]
    telling = [
        line
        for line in lines
        if line.lower().startswith(("fatal:", "error:", "remote:", "ssh:", "!", "hint:"))
        and not line.lower().startswith("hint:")
    ]
    text = " ".join(telling or lines[-3:])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def hotfix_branch(app: str, target: str, incident: str) -> str:
    """`hotfix/rollback-<app>-<target>-<incident>`, each part made safe for a ref name."""

    def part(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-") or "x"

    return f"hotfix/rollback-{part(app)}-{part(target)}-{part(incident)}"


def push_args(branch: str) -> list[str]:
    """The push of the hotfix branch (never forced), as the plan shows it and `push` runs it."""
    return ["git", "push", "--porcelain", "origin", f"refs/heads/{branch}:refs/heads/{branch}"]


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    short: str
    subject: str
    parents: tuple[str, ...] = ()

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1

    def oneline(self) -> str:
        return f"{self.short} {self.subject}"

    def fact(self) -> CommitFact:
        return CommitFact(sha=self.sha, short=self.short, subject=self.subject, merge=self.is_merge)


@dataclass(frozen=True)
class RollbackPlan:
    """How to get from `deployed` back to `target`.

    `commits` is `git log target..deployed`; `reverts` the commits on deployed's first-parent
    line that a revert undoes, newest first. Reverting all of them yields target's tree.
    """

    target_sha: str
    deployed_sha: str
    commits: list[CommitInfo]
    reverts: list[CommitInfo]
    methods: tuple[Method, ...]
    recommended: Method
    reason: str
    merges: list[CommitInfo] = field(default_factory=list)


# One lock per clone, shared by every AppRepo on it: steps make their own AppRepo objects.
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class RevertConflict(Exception):
    def __init__(self, commit: CommitInfo, files: list[str]) -> None:
        self.commit, self.files = commit, files
        where = f" (conflicts in {', '.join(files[:5])})" if files else ""
        super().__init__(
            f"reverting {commit.short} “{commit.subject}” does not apply cleanly{where}"
        )


class AppRepo:
    """The bot's clone of `url` at `path`. Call `sync()` before anything else."""

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        # Absolute: the clone is made from another working directory than the bot's.
        self.path = absolute(path)
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(self.path.resolve(), threading.Lock())
        self._repo: Repo | None = None

    # ---- plumbing ---------------------------------------------------------------------------

    async def _thread(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        def locked() -> _T:
            with self._lock:
                return fn(*args, **kwargs)

        return await asyncio.to_thread(locked)

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            try:
                self._repo = Repo(self.path)
            except (InvalidGitRepositoryError, NoSuchPathError):
                raise StepError(
                    f"the bot's clone at {self.path} is missing",
                    hint="Retry: the clone is made again on the next run.",
                ) from None
        return self._repo

    def _exec(self, args: list[str], cwd: Path | None = None) -> tuple[int, str, str]:
        git = Git(str(cwd or self.path))
        status, out, err = git.execute(
            ["git", *_CONFIG, *args],
            with_extended_output=True,
            with_exceptions=False,
            env=_quiet_env(),
        )
        return int(status), str(out or ""), str(err or "")

    def _git(self, *args: str, what: str = "", cwd: Path | None = None) -> str:
        status, out, err = self._exec(list(args), cwd)
        if status != 0:
            raise self._explain(what or f"git {args[0]} failed", out + "\n" + err)
        return out

    def _ok(self, *args: str) -> str | None:
        status, out, _ = self._exec(list(args))
        return out.strip() if status == 0 else None

    def _explain(self, what: str, output: str) -> StepError:
        text = redact(output.strip())
        low = text.lower()
        where = redact(self.url)
        if any(p in low for p in _REFUSED):
            return StepError(
                f"{what}: origin refused it (protected branch or a server hook)",
                hint=f"Let the bot push `hotfix/*` branches to {where}, or push the branch by "
                "hand, then Retry. The server said: " + _remote_lines(text),
                detail=text,
            )
        if any(p in low for p in _AUTH):
            return StepError(
                f"{what}: {where} did not accept the bot's credentials",
                hint="Give the bot's SSH key or token access to the repository, then Retry.",
                detail=text,
            )
        if any(p in low for p in _UNREACHABLE):
            return StepError(
                f"{what}: {where} cannot be reached",
                hint="Check the `repo` URL in the apps file and the network, then Retry.",
                detail=text,
            )
        if "non-fast-forward" in low or "[rejected]" in low or "fetch first" in low:
            return StepError(
                f"{what}: the branch already exists on origin with other commits",
                hint="Delete that branch on origin if it is a leftover, then Retry.",
                detail=text,
            )
        return StepError(what, hint="The git output is attached.", detail=text)

    # ---- sync -------------------------------------------------------------------------------

    async def sync(self) -> list[str]:
        """Clone on first use, else fetch; returns notes worth telling (e.g. changes dropped)."""
        return await self._thread(self._sync)

    def _sync(self) -> list[str]:
        notes: list[str] = []
        if not (self.path / ".git").exists():
            if self.path.exists() and any(self.path.iterdir()):
                raise StepError(
                    f"{self.path} exists but is not a git clone",
                    hint="It is where the bot keeps its clone of the app: move it away, then "
                    "Retry.",
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._git(
                "clone",
                "--quiet",
                "--",
                self.url,
                str(self.path),
                what=f"cloning {redact(self.url)} failed",
                cwd=self.path.parent,
            )
            self._repo = None
            return notes
        origin = self._ok("remote", "get-url", "origin")
        if origin != self.url:
            raise StepError(
                f"the bot's clone at {self.path} comes from {redact(origin or 'nowhere')}, "
                f"not {redact(self.url)}",
                hint="The `repo` of the app changed: delete that directory, then Retry.",
            )
        # A step that died mid-revert leaves the sequencer behind; it would block the next one.
        self._exec(["revert", "--quit"])
        dirty = self._ok("status", "--porcelain", "--untracked-files=all")
        if dirty:
            files = [line.split(maxsplit=1)[-1] for line in dirty.splitlines()][:5]
            notes.append(
                "The bot's clone had local changes (" + ", ".join(files) + "); they were "
                "discarded — it is the bot's own clone and holds nothing of value."
            )
            self._git("reset", "--quiet", "--hard")
            self._git("clean", "-ffdxq")
        self._git(
            "fetch",
            "--quiet",
            "--prune",
            "--no-tags",
            "origin",
            # Tags are origin's, like everything else here: moved ones follow, deleted ones go.
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
            what=f"fetching {redact(self.url)} failed",
        )
        return notes

    # ---- reading ----------------------------------------------------------------------------

    async def resolve(self, version: str | Version) -> str | None:
        """The commit of a tag, a branch on origin, or a commit id; None when none matches."""
        return await self._thread(self._resolve, version)

    def _resolve(self, asked: str | Version) -> str | None:
        version = str(asked).strip().removesuffix("-dirty")
        # A `Version` was checked where it came in; a text was read on a host, not yet.
        if not isinstance(asked, Version) and not is_version(version):
            raise UserFacingError(f"`{version[:60]}` is not a version, tag, branch or commit id")
        candidates = [f"refs/tags/{version}", f"refs/remotes/origin/{version}"]
        if _HEX.match(version) or _DESCRIBE.match(version):
            candidates.append(version)
        for ref in candidates:
            sha = self._ok("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
            if sha:
                return sha
        return None

    async def previous_tag(self, version: str) -> str | None:
        """The nearest tag below `version`'s commit (not on it): the release before it."""
        return await self._thread(self._previous_tag, version)

    def _previous_tag(self, version: str) -> str | None:
        sha = self._resolve(version)
        if sha is None:
            return None
        return self._ok("describe", "--tags", "--abbrev=0", f"{sha}^")

    async def recent_tags(self, count: int = 8) -> list[str]:
        return await self._thread(self._recent_tags, count)

    def _recent_tags(self, count: int) -> list[str]:
        out = self._ok("tag", "--list", "--sort=-creatordate") or ""
        return out.split()[:count]

    async def commits_between(self, old: str, new: str) -> list[CommitInfo]:
        """`git log old..new`, newest first."""
        return await self._thread(self._log, f"{old}..{new}")

    def _log(self, spec: str, *extra: str) -> list[CommitInfo]:
        out = self._git(
            "log", "--format=%H%x1f%h%x1f%P%x1f%s", *extra, spec, "--", what="git log failed"
        )
        commits = []
        for line in out.splitlines():
            sha, short, parents, subject = line.split("\x1f", 3)
            commits.append(CommitInfo(sha, short, subject, tuple(parents.split())))
        return commits

    async def files_at(self, ref: str, directory: str) -> dict[str, str]:
        """`{path: text}` of the files under `directory` at `ref`, without a checkout."""
        return await self._thread(self._files_at, ref, directory)

    def _files_at(self, ref: str, directory: str) -> dict[str, str]:
        try:
            tree = self.repo.commit(ref).tree
        except (BadName, ValueError, GitError):
            raise StepError(f"`{ref}` is not in the bot's clone of the app") from None
        try:
            sub = tree / directory.strip("/")
        except KeyError:
            return {}
        return {
            str(item.path): item.data_stream.read().decode("utf-8", "replace")
            for item in sub.traverse()
            if isinstance(item, Blob)
        }

    async def remote_branch(self, branch: str) -> str | None:
        """The commit `branch` has on origin right now, or None."""
        return await self._thread(self._remote_branch, branch)

    def _remote_branch(self, branch: str) -> str | None:
        out = self._git(
            "ls-remote", "--heads", "origin", f"refs/heads/{branch}",
            what=f"asking {redact(self.url)} for its branches failed",
        )  # fmt: skip
        return out.split()[0] if out.strip() else None

    async def is_rollback(self, sha: str, target_sha: str, deployed_sha: str) -> bool:
        """Is `sha` what `create_hotfix` makes: target itself, or deployed plus reverts that
        bring back target's exact tree?"""
        return await self._thread(self._is_rollback, sha, target_sha, deployed_sha)

    def _is_rollback(self, sha: str, target_sha: str, deployed_sha: str) -> bool:
        if sha == target_sha:
            return True
        if self._ok("cat-file", "-e", f"{sha}^{{commit}}") is None:
            self._exec(["fetch", "--quiet", "origin", sha])
        same_tree = self._ok("rev-parse", f"{sha}^{{tree}}") == self._ok(
            "rev-parse", f"{target_sha}^{{tree}}"
        )
        descends = self._exec(["merge-base", "--is-ancestor", deployed_sha, sha])[0] == 0
        return same_tree and descends

    # ---- planning and making the branch -----------------------------------------------------

    async def plan(self, target: str, deployed: str) -> RollbackPlan:
        """Which methods work and which one to use; tries the revert on a scratch checkout."""
        return await self._thread(self._plan, target, deployed)

    def _plan(self, target_sha: str, deployed_sha: str) -> RollbackPlan:
        commits = self._log(f"{target_sha}..{deployed_sha}")
        merges = [c for c in commits if c.is_merge]
        reverts = self._log(f"{target_sha}..{deployed_sha}", "--first-parent")

        def tag_only(reason: str) -> RollbackPlan:
            return RollbackPlan(
                target_sha, deployed_sha, commits, reverts, ("tag",), "tag", reason, merges
            )

        if target_sha == deployed_sha:
            return tag_only("the hosts already run this commit: there is nothing to revert")
        if not reverts or reverts[-1].parents[:1] != (target_sha,):
            return tag_only(
                "the target is not an earlier commit on the deployed version's main line, so "
                "reverting cannot lead back to it exactly; the branch is made at the target"
            )
        try:
            self._revert_onto(deployed_sha, reverts, branch=None)
        except RevertConflict as exc:
            return tag_only(f"{exc}; the branch is made at the target instead")
        finally:
            self._git("checkout", "--quiet", "--detach", "--force", deployed_sha)
        merged = sum(c.is_merge for c in reverts)
        undone = _count(merged, "merge") + (
            f" and {_count(len(reverts) - merged, 'other commit')}" if len(reverts) > merged else ""
        )
        reason = (
            f"revert keeps the history: {_count(len(reverts), 'revert commit')} on top of the "
            f"deployed version undo its {undone} and give exactly the target's files; each "
            "can be reverted later to bring a feature back"
        )
        return RollbackPlan(
            target_sha, deployed_sha, commits, reverts, ("revert", "tag"), "revert", reason, merges
        )

    def _revert_onto(self, base: str, reverts: list[CommitInfo], branch: str | None) -> str:
        start = ["-B", branch] if branch else ["--detach"]
        self._git("checkout", "--quiet", "--force", *start, base)
        for commit in reverts:
            if self._ok("diff", "--quiet", f"{commit.sha}^1", commit.sha, "--") is not None:
                continue  # nothing to undo (an empty commit, a `merge -s ours`): revert refuses
            mainline = ["-m", "1"] if commit.is_merge else []
            status, _, _ = self._exec(["revert", "--no-edit", *mainline, commit.sha])
            if status != 0:
                conflicted = self._ok("diff", "--name-only", "--diff-filter=U") or ""
                self._exec(["revert", "--abort"])
                raise RevertConflict(commit, conflicted.split())
        return self._git("rev-parse", "HEAD").strip()

    async def create_hotfix(
        self, branch: str, target_sha: str, deployed_sha: str, method: Method
    ) -> str:
        """Make local `branch` as `method` says and return its commit (not pushed yet)."""
        return await self._thread(self._create_hotfix, branch, target_sha, deployed_sha, method)

    def _create_hotfix(
        self, branch: str, target_sha: str, deployed_sha: str, method: Method
    ) -> str:
        self._git("check-ref-format", "--branch", branch, what=f"`{branch}` is not a branch name")
        if method == "tag":
            self._git("checkout", "--quiet", "--force", "-B", branch, target_sha)
            return target_sha
        reverts = self._log(f"{target_sha}..{deployed_sha}", "--first-parent")
        if not reverts or reverts[-1].parents[:1] != (target_sha,):
            raise StepError(
                "the target is not on the deployed version's main line, so a revert cannot "
                "lead back to it",
                hint="Choose “take the tag as it is”, then Retry.",
            )
        try:
            sha = self._revert_onto(deployed_sha, reverts, branch)
        except RevertConflict as exc:
            raise StepError(
                str(exc)[0].upper() + str(exc)[1:],
                hint="Choose “take the tag as it is” instead, then Retry — or revert by hand.",
            ) from None
        if self._ok("diff", "--quiet", target_sha, sha, "--") is None:
            raise StepError(
                "the reverts do not give back the target's files exactly",
                hint="Choose “take the tag as it is” instead, then Retry.",
            )
        return sha

    async def push(self, branch: str) -> None:
        """Push local `branch` to origin under the same name (never forced)."""
        await self._thread(self._push, branch)

    def _push(self, branch: str) -> None:
        self._git(*push_args(branch)[1:], what=f"pushing {branch} failed")


def _remote_lines(text: str) -> str:
    lines = [line.removeprefix("remote:").strip() for line in text.splitlines()]
    said = [line for line in lines if line and not line.startswith(("To ", "!", "error:"))]
    said = [line for line in said if not line.startswith(("Done", "hint:"))]
    return " ".join(said[:3]) or "(nothing)"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


class GitRepos:
    """The `Repos` port: version checks in a clone of their own under `workspace`.

    Its own clone, because the steps' clone may be mid-revert for the incident holding the app.
    """

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace

    async def has_version(self, app: AppConfig, version: Version) -> bool:
        repo = AppRepo(app.repo, clone_dir(self.workspace, "repos-check", app.name, app.repo))
        if (repo.path / ".git").exists() and await repo.resolve(version) is not None:
            return True  # known already: no fetch (the assess step fetches for itself anyway)
        try:
            await repo.sync()
        except StepError as exc:
            raise UserFacingError(
                f"Cannot check `{version}`: {exc.what}. git said: “{git_said(exc.detail)}”. "
                + exc.hint.replace("then Retry", "then run the command again")
                + " Nothing was started."
            ) from None
        return await repo.resolve(version) is not None


# ---- the incident report's commit ----------------------------------------------------------

PUSH_TIMEOUT = 60


@dataclass(frozen=True)
class Committed:
    sha: str | None  # None: not a git checkout, or nothing changed
    pushed: bool = False
    push_error: str = ""
    note: str = ""


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
