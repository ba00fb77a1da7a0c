"""The Slack side of the `Notifier` port: one thread per incident, paced and coalesced.

* Never on the critical path: `say`, `ask`, `upload`, `alert`, `resolve_gate` and step output only
  queue their message and return; each incident's messages go out in the order they were queued
  from a background task per incident, which is where the pacing waits (`send_queue.py`).
  `flush` (and `aclose`) wait until everything queued is sent.
* A question first: a gate (its buttons wait for a person) is posted ahead of the incident's
  queued output and messages, in its channel's next free slot, and the checklist update
  follows it; what was already on its way to Slack stays before it.
* The parent shows the question too: when a gate opens, the parent (the checklist) is updated
  at once with the question's line and the gate's own buttons, without waiting for a message
  slot (`parent_updater.py`); its next update after the answer has no buttons.
* Pacing: at most one new message per channel every `min_interval` seconds (`pacing.py`), and at
  most one `chat.update` of a parent per `min_interval`. Parent updates are "latest state wins":
  a pending update is replaced, never queued (`parent_updater.py`).
* Step output is buffered per (incident, step, host) and posted as code blocks in the thread;
  what does not fit a message goes up as a file — never dropped (`output_poster.py`).
* Slack's answers are checked: rate limits are retried by the client (`slack_api.py`),
  `msg_too_long`/`invalid_blocks` fall back to a simpler message or a
  file; anything else is logged (never the token), counted in `failures`, and swallowed — the
  workflow never crashes because Slack refused one message (`slack_calls.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

from slack_sdk.web.async_client import AsyncWebClient

from bot.config.apps_file import AppsFile
from bot.fronts.dispatch import Reply
from bot.fronts.slack import blocks as render
from bot.fronts.slack import mrkdwn
from bot.fronts.slack import text as t
from bot.fronts.slack.gate_messages import GateMessages
from bot.fronts.slack.output_poster import OutputPoster
from bot.fronts.slack.pacing import ChannelPacer
from bot.fronts.slack.parent_updater import ParentUpdater
from bot.fronts.slack.replies import reply_text
from bot.fronts.slack.send_queue import SendQueue
from bot.fronts.slack.slack_calls import TEXT_MAX, SlackCalls
from bot.fronts.slack.thread_state import IncidentState, Lifecycle, Threads
from bot.views import incident as views
from bot.workflow.facts import AnswerFact
from bot.workflow.messages import Message
from bot.workflow.model import Gate, Incident, StepId, ThreadRef

log = logging.getLogger(__name__)


class SlackNotifier:
    """`bot.ports.Notifier` over Slack's Web API."""

    def __init__(
        self,
        client: AsyncWebClient,
        apps: AppsFile,
        *,
        min_interval: float = 1.0,
        retry_pause: float = 1.0,
        outage_for: float = 300.0,
        max_output_blocks: int = 20,
        on_failure: Callable[[str, str], None] | None = None,
        questions_first: bool = True,
    ) -> None:
        self.apps = apps
        self.questions_first = questions_first
        """False: a question waits behind the queued output, as before (the bench's baseline)."""
        self.min_interval = min_interval
        self._pacer = ChannelPacer(min_interval)
        self.calls = SlackCalls(
            client,
            retry_pause=retry_pause,
            outage_for=outage_for,
            on_failure=on_failure,
            on_sent=self._pacer.sent,
        )
        self.client = self.calls.client
        self._life = Lifecycle()
        self._threads = Threads(apps)
        output = OutputPoster(self.calls, self._threads, max_output_blocks)
        self._queue = SendQueue(self._threads, self._pacer, output, self._life)
        self._parents = ParentUpdater(
            self.calls, self._life, min_interval, self._queue.questions_sent
        )
        self._gates = GateMessages(self.calls, self._threads, self._pacer, apps)

    @property
    def failures(self) -> int:
        """Slack calls that failed for good (after retries and fallbacks)."""
        return self.calls.failures

    @property
    def failures_by_method(self) -> Counter[str]:
        return self.calls.failures_by_method

    @property
    def fallbacks(self) -> int:
        """Messages Slack refused as they were and that went out in a simpler form."""
        return self.calls.fallbacks

    # ---- the Notifier port -------------------------------------------------------------------

    # ---- the rest of the Front port (bot.fronts.port) -----------------------------------

    def person(self, user: str) -> str:
        return t.mention(user)

    def render(self, reply: Reply) -> str:
        return reply_text(reply)

    async def open_thread(self, incident: Incident) -> ThreadRef:
        app = self.apps.app(incident.app)
        channel = app.incident_channel if app else ""
        state = self._threads.of(incident)
        text, blocks = render.parent(incident)
        await self._pacer.slot(channel)
        ts = await self.calls.post(channel, text, blocks)
        if not ts:
            log.error("incident %s: could not open the thread in %s", incident.id, channel)
            return ThreadRef(channel=channel, ts="")
        ref = ThreadRef(channel=channel, ts=ts, permalink=await self.calls.permalink(channel, ts))
        state.thread = ref
        self._parents.opened(state, incident)
        return ref

    async def update_parent(self, incident: Incident) -> None:
        self._parents.update(self._threads.of(incident), incident)

    async def say(self, incident: Incident, message: Message) -> None:
        text = mrkdwn.render(message)
        state = self._threads.of(incident)
        await self._queue.queue(state, functools.partial(self._say_now, state, incident, text))

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        if not line.strip():
            return  # a blank line says nothing, and a message of blank lines is noise
        self._queue.add_line(self._threads.of(incident), step, host, line)

    async def flush(self, incident: Incident) -> None:
        state = self._threads.get(incident.id)
        if state is None:
            return
        if self._life.closed:  # no background task any more: send it from here
            await self._queue.questions_sent(state)
            await self._queue.send_all(state)
            if state.pending_parent is not None:
                await self._parents.send(state)
            return
        while state.busy:
            self._queue.kick(state)
            self._parents.kick(state)
            for task in state.tasks:
                await asyncio.shield(task)

    async def ask(self, incident: Incident, gate: Gate) -> None:
        state = self._threads.of(incident)
        if not self.questions_first:
            await self._queue.queue(
                state, functools.partial(self._gates.ask_now, state, incident, gate)
            )
            return
        send = functools.partial(self._gates.ask_now, state, incident, gate, urgent=True)
        if _opens(incident, gate):  # the parent shows it at once (chat.update: no slot to wait)
            await self._parents.ask(state, incident)
        await self._queue.ask_first(state, send)

    async def resolve_gate(
        self, incident: Incident, token: str, answer: AnswerFact, *, ts: str | None = None
    ) -> None:
        """Replace the gate's buttons with who answered what (`✅ Approved by @carol at …`).

        Works in any process: the gate message is found in memory, by `ts` (the clicked
        message, from the button payload), or in the thread by its block id `gate-<token>`.
        Never the parent, even when its buttons were the ones clicked: the parent's next update
        shows the gate closed.
        Queued, and sent once the gate's own message is posted, should that still be on its way.
        """
        state = self._threads.of(incident)

        async def send() -> None:
            await self._queue.questions_sent(state)
            await self._gates.resolve_now(state, incident, token, answer, ts)

        await self._queue.queue(state, send)

    async def stakeholders(
        self,
        incident: Incident,
        phase: Literal["start", "end"],
        channels: Sequence[str] | None = None,
        members: Sequence[Incident] = (),
    ) -> list[str]:
        # Awaited, not queued: the caller records who was really told.
        state = self._threads.of(incident)
        app = self.apps.app(incident.app)
        if app is None:
            return []
        text, blocks = render.notice(
            self._threads.with_thread(incident, state), phase, app.mention, members
        )
        told: list[str] = []
        for channel in app.notify if channels is None else channels:
            await self._pacer.slot(channel)
            if await self.calls.post(channel, text, blocks):
                told.append(channel)
        return told

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
        state = self._threads.of(incident)
        send = functools.partial(self._upload_now, state, filename, content, title, comment)
        await self._queue.queue(state, send)

    async def alert(self, incident: Incident, message: Message) -> None:
        text = mrkdwn.render(message)
        state = self._threads.of(incident)
        await self._queue.queue(state, functools.partial(self._alert_now, state, incident, text))

    async def held_notices(self, incident: Incident) -> list[str]:
        return []  # a refused notice is reported by `stakeholders`, never held silently

    async def post_plan(
        self, channel: str, text: str, blocks: list[dict[str, Any]], filename: str, content: str
    ) -> str | None:
        """A plan: its message (with its button) in `channel`, the file in that message's
        thread. The message's permalink; None when it could not be posted."""
        await self._pacer.slot(channel)
        ts = await self.calls.post(channel, text, blocks)
        if not ts:
            return None
        await self._pacer.slot(channel)
        await self.calls.upload(channel, ts, filename, content, title=filename)
        return await self.calls.permalink(channel, ts) or ""

    # ---- what the background sender does with each queued message ---------------------------

    async def _say_now(self, state: IncidentState, incident: Incident, text: str) -> None:
        where = self._threads.where(state)
        if where is None:
            return
        channel, thread_ts = where
        await self._pacer.slot(channel)
        await self.calls.post_text(channel, text, thread_ts, incident=incident)

    async def _upload_now(
        self, state: IncidentState, filename: str, content: str, title: str, comment: str
    ) -> None:
        where = self._threads.where(state)
        if where is None:
            return
        channel, thread_ts = where
        await self._pacer.slot(channel)
        await self.calls.upload(channel, thread_ts, filename, content, title, comment)

    async def _alert_now(self, state: IncidentState, incident: Incident, text: str) -> None:
        app = self.apps.app(incident.app)
        where = self._threads.where(state)
        if where is not None:
            channel, thread_ts = where
            await self._pacer.slot(channel)
            await self.calls.post_text(channel, f"🚨 {text}", thread_ts)
        if app is None:
            return
        with_thread = self._threads.with_thread(incident, state)
        body, blocks = render.alert(with_thread, text, app.mention)
        for channel in app.notify:
            await self._pacer.slot(channel)
            await self.calls.post(channel, body, blocks)

    # ---- more Slack surface ------------------------------------------------------------------

    async def ephemeral(
        self, channel: str, user: str, text: str, thread_ts: str | None = None
    ) -> bool:
        resp = await self.calls.safe(
            "chat.postEphemeral",
            lambda: self.client.chat_postEphemeral(
                channel=channel, user=user, text=t.truncate(text, TEXT_MAX), thread_ts=thread_ts
            ),
        )
        return resp is not None

    async def publish_home(self, user: str, incidents: Sequence[Incident]) -> bool:
        view = render.home(incidents)
        resp = await self.calls.safe(
            "views.publish", lambda: self.client.views_publish(user_id=user, view=view)
        )
        return resp is not None

    def gate_message(self, token: str) -> tuple[str, str] | None:
        """(channel, ts) of the gate message this process posted, if any."""
        return self._gates.message_of(token)

    async def aclose(self) -> None:
        """Send everything pending, then stop the background tasks."""
        for state in self._threads.all():
            with contextlib.suppress(Exception):
                await self.flush(state.incident)
        self._life.closed = True
        for state in self._threads.all():
            for task in state.tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _opens(incident: Incident, gate: Gate) -> bool:
    """`incident` is the state in which `gate` is open (what the parent shows as a question)."""
    asked = views.open_question(incident)
    return asked is not None and asked.gate.token == gate.token
