"""What the Slack notifier keeps per incident, and where an incident's messages go."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.config.apps_file import AppsFile
from bot.telemetry.logs import INCIDENT
from bot.workflow.model import Incident, StepId, ThreadRef

log = logging.getLogger(__name__)

_IDLE = 600.0  # seconds after which an ended incident's state is forgotten

Send = Callable[[], Awaitable[object]]
Lines = dict[tuple[StepId, str], list[str]]


@dataclass
class IncidentState:
    """What the notifier keeps per incident."""

    incident: Incident
    thread: ThreadRef | None = None
    pending_parent: Incident | None = None
    sent_version: int = -1
    parent_next: float = 0.0  # monotonic time the next chat.update may go
    lines: Lines = field(default_factory=dict)
    outbox: deque[Send] = field(default_factory=deque)
    questions: deque[Send] = field(default_factory=deque)  # ahead of the outbox and the lines
    files: int = 0
    active: float = field(default_factory=time.monotonic)
    sender: asyncio.Task[None] | None = None  # sends the outbox, then the lines
    parent_sender: asyncio.Task[None] | None = None
    asker: asyncio.Task[None] | None = None  # sends the questions
    parent_asker: asyncio.Task[None] | None = None  # the parent update that shows a question
    parent_now: bool = False  # a gate opened: the pending parent update goes at once
    parent_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one chat.update at a time

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The background tasks still sending for this incident."""
        tasks = (self.asker, self.sender, self.parent_sender, self.parent_asker)
        return [t for t in tasks if t is not None and not t.done()]

    @property
    def busy(self) -> bool:
        queued = self.lines or self.outbox or self.questions
        return bool(self.tasks or queued) or self.pending_parent is not None


class Threads:
    """Each incident's state, by incident id; ended incidents are forgotten once idle."""

    def __init__(self, apps: AppsFile) -> None:
        self.apps = apps
        self._states: dict[str, IncidentState] = {}

    def of(self, incident: Incident) -> IncidentState:
        """The incident's state, made current with `incident` (unless it is older)."""
        state = self._states.get(incident.id)
        if state is None:
            self._forget_idle()
            state = self._states[incident.id] = IncidentState(incident=incident)
        elif incident.version >= state.incident.version:
            state.incident = incident
        if incident.thread is not None and incident.thread.ts:
            state.thread = incident.thread
        state.active = time.monotonic()
        return state

    def get(self, incident_id: str) -> IncidentState | None:
        return self._states.get(incident_id)

    def all(self) -> list[IncidentState]:
        return list(self._states.values())

    def where(self, state: IncidentState) -> tuple[str, str | None] | None:
        """(channel, thread ts) for replies; the app's channel top-level if no thread."""
        thread = state.thread
        if thread is not None and thread.channel:
            return thread.channel, thread.ts or None
        app = self.apps.app(state.incident.app)
        if app is None:
            log.error("incident %s: unknown app, nowhere to post", state.incident.id)
            return None
        return app.incident_channel, None

    @staticmethod
    def with_thread(incident: Incident, state: IncidentState) -> Incident:
        if incident.thread is None and state.thread is not None:
            return incident.model_copy(update={"thread": state.thread})
        return incident

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for key, state in list(self._states.items()):
            if now - state.active > _IDLE and not state.busy and not state.incident.status.open:
                del self._states[key]


def context_of(state: IncidentState) -> contextvars.Context:
    """A sender's own context: its log lines carry its incident's id, not its starter's."""
    context = contextvars.Context()
    context.run(INCIDENT.set, state.incident.id)
    return context


class Lifecycle:
    """Shared by the notifier's parts: once closed, nothing starts a background task any more
    and whatever is queued is sent by the caller."""

    def __init__(self) -> None:
        self.closed = False
