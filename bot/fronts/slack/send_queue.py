"""Each incident's ordered send queue: its messages go out in the order they were queued, from a
background task per incident, which is where the pacing waits; its step output follows the
messages queued before it.

A question (a gate: its buttons wait for a person) goes first: it has its own lane and task, and
takes its channel's next free slot ahead of whatever is queued, output and messages alike. What
is already on its way to Slack stays before it; what it jumps keeps its own order after it."""

from __future__ import annotations

import asyncio
import functools
import logging

from bot.fronts.slack.output_poster import OutputPoster
from bot.fronts.slack.pacing import ChannelPacer
from bot.fronts.slack.thread_state import (
    IncidentState,
    Lifecycle,
    Lines,
    Send,
    Threads,
    context_of,
)
from bot.workflow.model import StepId

log = logging.getLogger(__name__)


class SendQueue:
    """Queues an incident's messages and output, and sends them in order in the background."""

    def __init__(
        self, threads: Threads, pacer: ChannelPacer, output: OutputPoster, life: Lifecycle
    ) -> None:
        self.threads = threads
        self.pacer = pacer
        self.output = output
        self.life = life

    def add_line(self, state: IncidentState, step: StepId, host: str, line: str) -> None:
        state.lines.setdefault((step, host), []).append(line.rstrip("\r\n"))
        self.kick(state)

    async def queue(self, state: IncidentState, send: Send) -> None:
        """Queue a message behind the incident's earlier ones (output included) and return."""
        if state.lines:  # output that came before stays before
            taken, state.lines = state.lines, {}
            state.outbox.append(functools.partial(self._send_lines, state, taken))
        if self.life.closed:  # no background task any more: send it now
            state.outbox.append(send)
            while state.outbox:
                await state.outbox.popleft()()
            return
        state.outbox.append(send)
        self.kick(state)

    async def ask_first(self, state: IncidentState, send: Send) -> None:
        """Queue a question ahead of everything queued for the incident, and return."""
        if self.life.closed:  # no background task any more: send it now
            await send()
            return
        state.questions.append(send)
        self._kick_questions(state)

    async def questions_sent(self, state: IncidentState) -> None:
        """Return once every question queued so far is posted (or has failed for good): what
        refers to a question (its answer, the checklist that shows it) comes after it."""
        while state.questions or (state.asker is not None and not state.asker.done()):
            if self.life.closed:
                await self._send_questions(state)
                return
            self._kick_questions(state)
            if state.asker is not None:
                await asyncio.shield(state.asker)

    def _kick_questions(self, state: IncidentState) -> None:
        if self.life.closed or (state.asker is not None and not state.asker.done()):
            return
        if state.questions:
            state.asker = asyncio.get_running_loop().create_task(
                self._send_questions(state), context=context_of(state)
            )

    async def _send_questions(self, state: IncidentState) -> None:
        while state.questions:
            try:
                await state.questions.popleft()()
            except Exception:
                log.exception("Slack notifier: a question of incident %s failed", state.incident.id)

    def kick(self, state: IncidentState) -> None:
        self._kick_questions(state)
        if self.life.closed or (state.sender is not None and not state.sender.done()):
            return
        state.sender = asyncio.get_running_loop().create_task(
            self.send_all(state), context=context_of(state)
        )

    async def send_all(self, state: IncidentState) -> None:
        """The incident's queued messages in order, then its output; ends when none is left."""
        while state.outbox or state.lines:
            try:
                if state.outbox:
                    await state.outbox.popleft()()
                else:
                    await self._send_output(state)
            except Exception:
                log.exception("Slack notifier: a message of incident %s failed", state.incident.id)

    async def _send_output(self, state: IncidentState) -> None:
        """The output buffered so far, taken once the channel's slot comes (so more fits)."""
        where = self.threads.where(state)
        if where is not None:
            await self.pacer.slot(where[0])
        taken, state.lines = state.lines, {}
        await self.output.post(state, taken)

    async def _send_lines(self, state: IncidentState, taken: Lines) -> None:
        where = self.threads.where(state)
        if where is not None:
            await self.pacer.slot(where[0])
        await self.output.post(state, taken)
