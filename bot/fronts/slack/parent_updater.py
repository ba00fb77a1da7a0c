"""The thread's parent message (the runbook checklist): latest state wins, at most one
chat.update per `min_interval`. A pending update is replaced, never queued. A question queued
for the thread goes first: the checklist that shows it waiting follows the question.

A question first (issue 21): when a gate opens, the parent shows its question and buttons at
once (`ask`): that one update waits neither for `min_interval` nor for the thread's question,
whose chat.postMessage may wait up to a second for the channel's next message slot; chat.update
is not bound by that per-channel limit. Updates go one at a time and never show an older state
than the one already shown, whichever path sends them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.fronts.slack import blocks as render
from bot.fronts.slack.slack_calls import SlackCalls
from bot.fronts.slack.thread_state import IncidentState, Lifecycle, context_of
from bot.workflow.model import Incident

log = logging.getLogger(__name__)


class ParentUpdater:
    """Keeps each incident's parent message at its latest state, from a background task."""

    def __init__(
        self,
        calls: SlackCalls,
        life: Lifecycle,
        min_interval: float,
        questions_sent: Callable[[IncidentState], Awaitable[None]],
    ) -> None:
        self.calls = calls
        self.life = life
        self.min_interval = min_interval
        self.questions_sent = questions_sent

    def opened(self, state: IncidentState, incident: Incident) -> None:
        """The parent was just posted showing `incident`: the next update waits its turn."""
        state.sent_version = incident.version
        state.parent_next = time.monotonic() + self.min_interval

    def update(self, state: IncidentState, incident: Incident) -> None:
        self._keep(state, incident)
        self.kick(state)

    async def ask(self, state: IncidentState, incident: Incident) -> None:
        """`incident` has just opened a gate: the parent shows it now, from a task of its own."""
        self._keep(state, incident)
        state.parent_now = True
        if self.life.closed:  # no background task any more: send it from here
            await self._send_now(state)
            return
        if state.parent_asker is None or state.parent_asker.done():
            state.parent_asker = asyncio.get_running_loop().create_task(
                self._send_now(state), context=context_of(state)
            )

    def kick(self, state: IncidentState) -> None:
        if self.life.closed or (state.parent_sender is not None and not state.parent_sender.done()):
            return
        if state.pending_parent is None:
            return
        state.parent_sender = asyncio.get_running_loop().create_task(
            self.send_all(state), context=context_of(state)
        )

    async def send_all(self, state: IncidentState) -> None:
        while state.pending_parent is not None:
            try:
                await self.send(state)
            except Exception:
                log.exception("Slack notifier: parent update of %s failed", state.incident.id)
                await asyncio.sleep(self.min_interval)

    async def send(self, state: IncidentState) -> None:
        """The pending update in its turn: `min_interval` after the last, after the questions."""
        wait = state.parent_next - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await self.questions_sent(state)
        await self._send_pending(state)

    async def _send_now(self, state: IncidentState) -> None:
        while state.parent_now:  # a gate opened while the last one was being shown: again
            state.parent_now = False
            try:
                await self._send_pending(state)
            except Exception:
                log.exception("Slack notifier: parent question of %s failed", state.incident.id)

    @staticmethod
    def _keep(state: IncidentState, incident: Incident) -> None:
        if incident.version < state.sent_version:
            return  # an older state than the one on screen
        pending = state.pending_parent
        if pending is None or incident.version >= pending.version:
            state.pending_parent = incident

    async def _send_pending(self, state: IncidentState) -> None:
        # One at a time: an update taken earlier never lands after a newer one.
        async with state.parent_lock:
            incident, state.pending_parent = state.pending_parent, None
            if incident is None or incident.version < state.sent_version:
                return
            state.parent_next = time.monotonic() + self.min_interval
            thread = state.thread
            if thread is None or not thread.ts:
                return
            text, blocks = render.parent(incident)
            if await self.calls.update(thread.channel, thread.ts, text, blocks):
                state.sent_version = max(state.sent_version, incident.version)
