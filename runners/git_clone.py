"""The bot's own clone of a repository (GitPython) and running git in it: never prompting,
never signing, credentials redacted from whatever git says, failures explained in words a person
can act on. `runners.git.AppRepo` builds on it.

GitPython blocks, so callers run it in a thread (`_thread`), one at a time per clone.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from git.cmd import Git
from git.exc import InvalidGitRepositoryError, NoSuchPathError
from git.repo import Repo

from bot.config.paths import absolute
from bot.workflow.errors import StepError

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


# One lock per clone, shared by every AppRepo on it: steps make their own AppRepo objects.
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class GitClone:
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


def _remote_lines(text: str) -> str:
    lines = [line.removeprefix("remote:").strip() for line in text.splitlines()]
    said = [line for line in lines if line and not line.startswith(("To ", "!", "error:"))]
    said = [line for line in said if not line.startswith(("Done", "hint:"))]
    return " ".join(said[:3]) or "(nothing)"
