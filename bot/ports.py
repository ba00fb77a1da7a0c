"""The ports the workflow reaches the world through. Adapters implement them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from bot.config.apps_file import AppConfig
from bot.workflow.errors import HostError
from bot.workflow.facts import AnswerFact
from bot.workflow.messages import Message
from bot.workflow.model import Gate, Incident, StepId, ThreadRef
from bot.workflow.version import Version

LineSink = Callable[[str, str], Awaitable[None]]  # (host, line)

# What to do about a failed command when nothing more specific is known: its output is in the
# thread (commands stream as they run), and the person picks Retry or Abort.
FAILED_HINT = "Its last lines are above. Fix the cause, then Retry — or Abort."


@dataclass(frozen=True)
class CommandResult:
    host: str
    command: str
    exit_status: int | None  # None: killed by the timeout or the connection dropped
    output: str  # stdout and stderr, interleaved as they came
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output.rstrip("\n").splitlines()[-lines:])

    @property
    def status(self) -> str:
        """How it ended, in words: `exit 3`, or that it had no exit status."""
        if self.exit_status is None:
            return "no exit status: timed out or cut off"
        return f"exit {self.exit_status}"

    def check(self, what: str, hint: str = FAILED_HINT) -> CommandResult:
        """Itself if it succeeded; else the error a person reads, the one way a failed command
        becomes one: `what` failed, on which host, how it ended, the tail of its output (the
        error's detail), and `hint`, what to do."""
        if self.ok:
            return self
        raise HostError(
            f"{what} failed ({self.status})", host=self.host, hint=hint, detail=self.tail()
        )


@dataclass(frozen=True)
class ScriptCommand:
    """One command of a host's script: shell text already rendered, validated and quoted."""

    command: str
    stream: bool = True  # its lines go to the thread as they come
    check: bool = True  # a non-zero exit stops the script here
    timeout: float | None = None  # None: the script's default
    # Its text is given when its turn comes (by `Decide`), as it depends on what ran before it
    # (a window read from the host's clock): the same session goes on instead of a new one.
    deferred: bool = False


Decide = Callable[[int, list[CommandResult | None]], Awaitable[bool | str]]
"""Asked before command i of a script, with the results so far: True runs it, False skips it,
a text runs that text instead (a `deferred` command only); raising stops the script before it
(and the exception goes to the caller)."""


class HostRunner(Protocol):
    """Runs shell commands on the app's hosts (SSH, or locally for the demo)."""

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        """Run `command` (already quoted) in the host's shell. Raises HostError if unreachable."""
        ...

    async def run_script(
        self,
        host: str,
        commands: Sequence[ScriptCommand],
        *,
        timeout: float | None = None,
        decide: Decide | None = None,
        on_line: LineSink | None = None,
    ) -> list[CommandResult | None]:
        """Run `commands` in turn as one script in one session on the host, streaming each
        command's lines; one result per command (None: not run). A failing `check` command or
        a timeout ends the script there. Raises HostError if unreachable."""
        ...

    async def close(self) -> None: ...


class Notifier(Protocol):
    """The incident's thread and the stakeholders' channels (Slack, or the terminal)."""

    async def open_thread(self, incident: Incident) -> ThreadRef: ...

    async def update_parent(self, incident: Incident) -> None: ...

    async def say(self, incident: Incident, message: Message) -> None:
        """A reply in the thread, rendered by the front (mrkdwn in Slack, names at a terminal)."""
        ...

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        """Step output, coalesced per host; may be delayed until `flush`."""
        ...

    async def flush(self, incident: Incident) -> None: ...

    async def ask(self, incident: Incident, gate: Gate) -> None: ...

    async def stakeholders(
        self,
        incident: Incident,
        phase: Literal["start", "end"],
        channels: Sequence[str] | None = None,
        members: Sequence[Incident] = (),
    ) -> list[str]:
        """Tell the app's `notify` channels (or `channels`: a group's, each once); returns the
        channels really told. A group's lead passes its `members` (in the group's order): the
        notice names each app and its version."""
        ...

    async def held_notices(self, incident: Incident) -> list[str]:
        """Channels whose notice could not be posted yet (Slack unreachable) and is kept, to
        be posted by the next process that reaches Slack."""
        ...

    async def upload(
        self,
        incident: Incident,
        filename: str,
        content: str,
        title: str,
        comment: str = "",
        *,
        whole_group: bool = False,
    ) -> None:
        """A file in the thread; `whole_group`: a release group's own (its report), which names
        no member app."""
        ...

    async def alert(self, incident: Incident, message: Message) -> None:
        """Urgent: to the thread and every stakeholder channel at once."""
        ...

    async def resolve_gate(self, incident: Incident, token: str, answer: AnswerFact) -> None:
        """The gate was answered: replace its buttons with who answered what."""
        ...


@dataclass(frozen=True)
class Committed:
    """What became of a commit of the incident report."""

    sha: str | None  # None: not a git checkout, or nothing changed
    pushed: bool = False
    push_error: str = ""
    note: str = ""


class Repos(Protocol):
    """The bot's clones of the apps' repositories, and the checkout the reports go to (git)."""

    async def has_version(self, app: AppConfig, version: Version) -> bool:
        """`version` is a tag or a commit of `app`'s repository (origin fetched first).

        Raises `UserFacingError` when the repository cannot be reached, saying why."""
        ...

    async def commit_report(self, paths: list[Path], message: str) -> Committed:
        """Commit exactly `paths` where they were written, then push when there is a remote.

        Never raises for git's own failures: what went wrong is in the `Committed`."""
        ...


class Directory(Protocol):
    """Who people are, by id (Slack's `users.info`): for words read outside the chat, such as
    the committed report."""

    async def names(self, user_ids: Collection[str]) -> dict[str, str]:
        """The names people know for the ids it can name; the others are left out. Never raises
        (an unreachable directory names nobody)."""
        ...


class StepQueue(Protocol):
    async def enqueue_step(self, incident_id: str, step: StepId, attempt: int) -> None: ...

    async def hand_over(self, incident_id: str, step: StepId, attempt: int) -> None:
        """Run this attempt again on another worker (this one is stopping)."""
        ...


AuditEntry = dict[str, Any]


@dataclass(frozen=True)
class Freeze:
    app: str
    by: str
    reason: str
    incident: str
    link: str
    at: str


Change = Callable[[Incident], Incident]


class Locks(Protocol):
    """The per-app lock, fenced: one incident at a time per app."""

    async def acquire_lock(self, app: str, incident_id: str) -> int | str:
        """The fencing token (int) if taken, else the id of the incident holding the app."""
        ...

    async def acquire_locks(self, holders: list[tuple[str, str]]) -> list[int] | tuple[str, str]:
        """A group's locks (app, incident id), all in one write or none: the fencing tokens in
        order, else the first app already held and the incident holding it."""
        ...

    async def release_lock(self, app: str, incident_id: str) -> None: ...

    async def holds_lock(self, app: str, incident_id: str, token: int) -> bool: ...

    async def lock_holder(self, app: str) -> str | None: ...


class AuditTrail(Protocol):
    """Who did what to an incident, in order; kept as long as the incident."""

    async def audit(self, incident_id: str, who: str, what: str, result: str = "") -> None: ...

    async def timeline(self, incident_id: str) -> list[AuditEntry]: ...


class Store(Locks, AuditTrail, Protocol):
    """Where incidents, the per-app lock, the audit trail and freezes live."""

    async def create(self, incident: Incident) -> None: ...

    async def load(self, incident_id: str) -> Incident | None: ...

    async def save(self, incident: Incident) -> bool:
        """Write if nobody wrote since `incident.version` was read; bumps the version.

        An incident written as ended frees its app's lock (if it holds it) in the same write:
        nobody may see it ended yet still holding the app, and a crash or failover keeps both."""
        ...

    async def update(self, incident_id: str, change: Change) -> Incident | None:
        """Load, `change`, save if nobody wrote in between, else again from what they wrote.

        The one compare-and-set loop; `change` may raise to give up. None: no such incident."""
        ...

    async def open_incidents(self) -> list[Incident]: ...

    async def recent_incidents(self, limit: int = 20) -> list[Incident]: ...

    async def first_time(self, key: str, ttl: int = 3600) -> bool:
        """True the first time `key` is seen (idempotency of Slack retries and replays)."""
        ...

    async def freeze(self, freeze: Freeze) -> None: ...

    async def unfreeze(self, app: str) -> Freeze | None: ...

    async def frozen(self, app: str) -> Freeze | None: ...

    async def save_plan(self, plan_id: str, data: str, ttl: int) -> None:
        """Keep a plan (JSON) for `Run this plan`, for `ttl` seconds."""
        ...

    async def load_plan(self, plan_id: str) -> str | None: ...

    async def ping(self) -> bool: ...


@dataclass(frozen=True)
class HeldNotice:
    """A stakeholder notice that could not be posted (Slack unreachable), kept to post later."""

    incident: str
    channel: str
    text: str
    at: str  # ISO time it was written


class HeldNotices(Protocol):
    """Notices the terminal front kept while Slack was down; the next process that reaches
    Slack posts them."""

    async def hold(self, notice: HeldNotice) -> None: ...

    async def held(self) -> list[HeldNotice]: ...

    async def count(self) -> int: ...

    async def take(self) -> HeldNotice | None:
        """The oldest notice, taken (no other process gets it); None when there is none."""
        ...

    async def put_back(self, notice: HeldNotice) -> None: ...


class PendingCommands(Protocol):
    """Commands acknowledged but not yet carried out, kept so that a process dying in between
    loses none."""

    async def record(self, key: str, body: dict[str, Any]) -> bool:
        """Keep the command before the ack; False when it was seen before (a Slack retry)."""
        ...

    def working(self, key: str) -> AbstractAsyncContextManager[None]:
        """While the command is carried out: it stays this process's; afterwards, forgotten."""
        ...

    async def orphans(self) -> list[tuple[str, dict[str, str]]]:
        """Commands whose process died, each now this process's."""
        ...


class Stores(Protocol):
    """The store a front is handed: the incidents (with their lock and audit trail) and the
    held notices. Built by `bot.store`; the front never knows it is Redis."""

    @property
    def incidents(self) -> Store: ...

    @property
    def held(self) -> HeldNotices | None: ...

    async def aclose(self) -> None: ...


class StoreOpener(Protocol):
    """How the terminal front gets its store (given by the CLI, which builds it from settings)."""

    def open(self) -> Stores:
        """The shared store; its calls ride out a short outage."""
        ...

    async def reach(self) -> Stores:
        """The shared store, after one quick ping: raises `StoreUnavailable` at once."""
        ...

    def memory(self) -> Stores:
        """A store in this process only (a plan without Redis)."""
        ...


class CompareAndSet:
    """`Store.update` for any store with `load` and a compare-and-set `save`."""

    TRIES = 50

    async def load(self, incident_id: str) -> Incident | None:
        raise NotImplementedError

    async def save(self, incident: Incident) -> bool:
        raise NotImplementedError

    async def update(self, incident_id: str, change: Change) -> Incident | None:
        for _ in range(self.TRIES):
            current = await self.load(incident_id)
            if current is None:
                return None
            changed = change(current)
            if await self.save(changed):
                return changed
        raise RuntimeError(f"incident {incident_id}: too many concurrent writers")
