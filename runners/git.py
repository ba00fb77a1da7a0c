"""The bot's own clone of an app's repository (GitPython): find versions, build the hotfix
branch that undoes a release, push it. The clone itself and running git in it are
`runners.git_clone`; the incident report's commit is `runners.git_commit`.

GitPython blocks, so every public method runs it in a thread. The clone is the bot's alone:
local changes in it are discarded, and nothing is ever taken from a local branch — versions
come from origin's tags and branches, or from a commit id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from git.exc import (
    BadName,
    GitError,
)
from git.objects import Blob

from bot.config.apps_file import AppConfig
from bot.ports import Committed
from bot.workflow.errors import StepError, UserFacingError
from bot.workflow.facts import CommitFact
from bot.workflow.version import Version, is_version
from runners.git_clone import GitClone, git_said
from runners.git_clone import clone_dir as clone_dir  # the steps read these from here
from runners.git_clone import redact as redact
from runners.git_commit import commit_report

Method = Literal["revert", "tag"]

_HEX = re.compile(r"^[0-9a-f]{4,40}$")
_DESCRIBE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*-[0-9]+-g[0-9a-f]{4,40}$")


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


class RevertConflict(Exception):
    def __init__(self, commit: CommitInfo, files: list[str]) -> None:
        self.commit, self.files = commit, files
        where = f" (conflicts in {', '.join(files[:5])})" if files else ""
        super().__init__(
            f"reverting {commit.short} “{commit.subject}” does not apply cleanly{where}"
        )


class AppRepo(GitClone):
    """The bot's clone of `url` at `path`. Call `sync()` before anything else."""

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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


class GitRepos:
    """The `Repos` port: version checks in a clone of their own under `workspace`.

    Its own clone, because the steps' clone may be mid-revert for the incident holding the app.
    """

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace

    async def commit_report(self, paths: list[Path], message: str) -> Committed:
        return await commit_report(paths, message)

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
