"""The error values Rewind shows to people.

One root exception; `UserFacingError` carries a message meant for the person who typed the
command (an ephemeral in Slack, a line on the terminal). `StepError` is a failed step: what
failed, on which host, and what the user can do about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.workflow.messages import Message, words
from bot.workflow.model import Criterion, ErrorInfo, HostResult
from bot.workflow.render_text import plain


class RewindError(Exception):
    """Root of every error Rewind raises on purpose."""


class UserFacingError(RewindError):
    """A refusal or bad input, for the person who asked: nothing has run.

    It carries a front-neutral `Message` (a person is a `Mention`, never Slack markup); each front
    renders it. `str()` of it is the plain text with ids as they are, for logs and the audit."""

    def __init__(self, message: str | Message) -> None:
        self.message = message if isinstance(message, Message) else words(message)
        super().__init__(plain(self.message))


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the apps file: where (key, line), what, and what to do."""

    key: str
    what: str
    fix: str = ""
    line: int | None = None
    column: int | None = None  # 1-based, where the parser can tell (YAML syntax errors)

    def text(self, path: str) -> str:
        where = f"{path}:{self.line}" if self.line else path
        where += f":{self.column}" if self.line and self.column else ""
        return f"{where}: {self.key}: {self.what}" + (f" — {self.fix}" if self.fix else "")


class ConfigError(RewindError):
    """The apps file is wrong: names the file, the key and what is wrong (every problem)."""

    def __init__(
        self, path: str, key: str, reason: str, problems: list[Problem] | None = None
    ) -> None:
        self.path, self.key, self.reason = path, key, reason
        self.problems = problems or [Problem(key, reason)]
        if len(self.problems) == 1:
            super().__init__(self.problems[0].text(path))
        else:
            listed = "\n".join(f"  - {p.text(path)}" for p in self.problems)
            super().__init__(f"{len(self.problems)} problems:\n{listed}")


class NotAVersion(UserFacingError, ValueError):
    """A text that cannot be a version (`bot.workflow.version`); a ValueError too, so that
    pydantic reports it as an invalid value."""


class StartupError(RewindError):
    """The installation cannot work as set up: one line that names the setting to fix."""


class StoreError(RewindError):
    """The store (Redis) failed a command. Its message is the store's own words, for the log and
    the person; the store's exception is its `__cause__`. Raised by `bot.store` only: no front
    ever sees a redis exception."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (refused, no answer in time, connection lost), after its
    client's retries: nothing was read or written by the call that raised it."""


class StepError(RewindError):
    """A step failed in a way the user can act on (Retry / Abort)."""

    def __init__(
        self, what: str, *, host: str | None = None, hint: str = "", detail: str = ""
    ) -> None:
        self.what, self.host, self.hint, self.detail = what, host, hint, detail
        self.hosts: dict[str, HostResult] = {}  # per-host results to show beside the error
        self.criteria: dict[Criterion, bool] = {}  # what the failed check found, e.g. health
        self.channels: list[str] = []  # channel ids it concerns (each front names them)
        where = f" on {host}" if host else ""
        super().__init__(f"{what}{where}" + (f": {hint}" if hint else ""))

    def info(self) -> ErrorInfo:
        """The failure as the incident keeps it (and the Retry/Abort question shows it)."""
        return ErrorInfo(
            what=self.what,
            host=self.host,
            hint=self.hint,
            detail=self.detail,
            channels=self.channels,
        )


class HostError(StepError):
    """A host could not be reached or a command on it failed."""
