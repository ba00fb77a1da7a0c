"""The ports the workflow reaches the world through. Adapters implement them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bot.workflow.model import Gate, Incident, StepId, ThreadRef

LineSink = Callable[[str, str], Awaitable[None]]  # (host, line)


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

    async def close(self) -> None: ...


class Notifier(Protocol):
    """The incident's thread and the stakeholders' channels (Slack, or the terminal)."""

    async def open_thread(self, incident: Incident) -> ThreadRef: ...

    async def update_parent(self, incident: Incident) -> None: ...

    async def say(self, incident: Incident, text: str) -> None: ...

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        """Step output, coalesced per host; may be delayed until `flush`."""
        ...

    async def flush(self, incident: Incident) -> None: ...

    async def ask(self, incident: Incident, gate: Gate) -> None: ...

    async def stakeholders(self, incident: Incident, phase: Literal["start", "end"]) -> list[str]:
        """Tell the `notify` channels; returns the channels really told."""
        ...

    async def upload(
        self, incident: Incident, filename: str, content: str, title: str, comment: str = ""
    ) -> None: ...


class StepQueue(Protocol):
    async def enqueue_step(self, incident_id: str, step: StepId, attempt: int) -> None: ...


AuditEntry = dict[str, Any]
