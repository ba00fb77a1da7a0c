"""The Slack side of the `Notifier` port: one thread per incident, paced and coalesced.

* Never on the critical path: `say`, `ask`, `upload`, `alert`, `resolve_gate` and step output only
  queue their message and return; each incident's messages go out in the order they were queued
  from a background task per incident, which is where the pacing waits. `flush` (and `aclose`)
  wait until everything queued is sent.
* Pacing: at most one new message per channel every `min_interval` seconds, and at most one
  `chat.update` of a parent per `min_interval`. Parent updates are "latest state wins": a pending
  update is replaced, never queued.
* Step output is buffered per (incident, step, host) and posted as code blocks in the thread;
  what does not fit a message goes up as a file — never dropped.
* Slack's answers are checked: rate limits are retried by the client (`slack_api.py`),
  `msg_too_long`/`invalid_blocks` fall back to a simpler message or a
  file; anything else is logged (never the token), counted in `failures`, and swallowed — the
  workflow never crashes because Slack refused one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.config.apps_file import AppConfig, AppsFile
from bot.fronts.slack import blocks as render
from bot.fronts.slack import mrkdwn
from bot.fronts.slack import text as t
from bot.fronts.slack.slack_api import error as _error
from bot.fronts.slack.slack_api import install_retry_handlers
from bot.telemetry.logs import INCIDENT
from bot.workflow import said
from bot.workflow.facts import AnswerFact
from bot.workflow.messages import Message
from bot.workflow.model import Gate, GateKind, Incident, StepId, ThreadRef
from bot.workflow.steps import SPECS

log = logging.getLogger(__name__)

_FALLBACK_ERRORS = frozenset(
    {"msg_too_long", "invalid_blocks", "invalid_blocks_format", "too_many_blocks"}
)
_TEXT_MAX = 3_900  # Slack shows longer `text` cut; beyond it a file is friendlier
_COMMENT_TAIL = 15
_IDLE = 600.0  # seconds after which an ended incident's state is forgotten

Send = Callable[[], Awaitable[object]]
Lines = dict[tuple[StepId, str], list[str]]


_TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "service_unavailable", "fatal_error", "request_timeout"}
)


def _transient(exc: SlackApiError) -> bool:
    """Slack is down or busy (retry later), as opposed to refusing this call (do not)."""
    try:
        status = int(exc.response.status_code)
    except Exception:
        status = 200
    return status >= 500 or status == 429 or _error(exc) in _TRANSIENT


def _retry_after(exc: SlackApiError) -> float | None:
    with contextlib.suppress(Exception):
        header = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
        if header:
            value = header[0] if isinstance(header, list) else header
            return min(max(float(value), 0.1), 60.0)
    return None


@dataclass
class _GateMessage:
    channel: str
    ts: str
    gate: Gate


@dataclass
class _State:
    """What the notifier keeps per incident."""

    incident: Incident
    thread: ThreadRef | None = None
    pending_parent: Incident | None = None
    sent_version: int = -1
    parent_next: float = 0.0  # monotonic time the next chat.update may go
    lines: Lines = field(default_factory=dict)
    outbox: deque[Send] = field(default_factory=deque)
    files: int = 0
    active: float = field(default_factory=time.monotonic)
    sender: asyncio.Task[None] | None = None  # sends the outbox, then the lines
    parent_sender: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        running = any(t is not None and not t.done() for t in (self.sender, self.parent_sender))
        return running or bool(self.lines or self.outbox) or self.pending_parent is not None


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
    ) -> None:
        self.client = install_retry_handlers(client, pause=retry_pause)
        self.apps = apps
        self.min_interval = min_interval
        self.retry_pause = retry_pause
        self.outage_for = outage_for
        """Seconds Slack may keep failing (5xx, 429, no connection) before a call gives up."""
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self.max_output_blocks = max_output_blocks
        self.on_failure = on_failure
        self.failures = 0
        """Slack calls that failed for good (after retries and fallbacks)."""
        self.failures_by_method: Counter[str] = Counter()
        self.fallbacks = 0
        """Messages Slack refused as they were and that went out in a simpler form."""
        self._states: dict[str, _State] = {}
        self._gates: dict[str, _GateMessage] = {}
        self._channel_next: dict[str, float] = {}
        self._closed = False

    # ---- the Notifier port -------------------------------------------------------------------

    async def open_thread(self, incident: Incident) -> ThreadRef:
        app = self.apps.app(incident.app)
        channel = app.incident_channel if app else ""
        state = self._state(incident)
        text, blocks = render.parent(incident)
        await self._slot(channel)
        ts = await self._post(channel, text, blocks)
        if not ts:
            log.error("incident %s: could not open the thread in %s", incident.id, channel)
            return ThreadRef(channel=channel, ts="")
        ref = ThreadRef(channel=channel, ts=ts, permalink=await self._permalink(channel, ts))
        state.thread = ref
        state.sent_version = incident.version
        state.parent_next = time.monotonic() + self.min_interval
        return ref

    async def update_parent(self, incident: Incident) -> None:
        state = self._state(incident)
        if incident.version < state.sent_version:
            return  # an older state than the one on screen
        pending = state.pending_parent
        if pending is None or incident.version >= pending.version:
            state.pending_parent = incident
        self._kick_parent(state)

    async def say(self, incident: Incident, message: Message) -> None:
        text = mrkdwn.render(message)
        state = self._state(incident)
        await self._queue(state, functools.partial(self._say_now, state, incident, text))

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        if not line.strip():
            return  # a blank line says nothing, and a message of blank lines is noise
        state = self._state(incident)
        state.lines.setdefault((step, host), []).append(line.rstrip("\r\n"))
        self._kick(state)

    async def flush(self, incident: Incident) -> None:
        state = self._states.get(incident.id)
        if state is None:
            return
        if self._closed:  # no background task any more: send it from here
            await self._send_messages(state)
            if state.pending_parent is not None:
                await self._send_parent(state)
            return
        while state.busy:
            self._kick(state)
            self._kick_parent(state)
            for task in (state.sender, state.parent_sender):
                if task is not None and not task.done():
                    await asyncio.shield(task)

    async def ask(self, incident: Incident, gate: Gate) -> None:
        state = self._state(incident)
        await self._queue(state, functools.partial(self._ask_now, state, incident, gate))

    async def resolve_gate(
        self, incident: Incident, token: str, answer: AnswerFact, *, ts: str | None = None
    ) -> None:
        """Replace the gate's buttons with who answered what (`✅ Approved by @carol at …`).

        Works in any process: the gate message is found in memory, by `ts` (the clicked
        message, from the button payload), or in the thread by its block id `gate-<token>`.
        Queued behind the gate's own message, should that still be on its way.
        """
        state = self._state(incident)
        send = functools.partial(self._resolve_gate_now, state, incident, token, answer, ts)
        await self._queue(state, send)

    async def stakeholders(self, incident: Incident, phase: Literal["start", "end"]) -> list[str]:
        # Awaited, not queued: the caller records who was really told.
        state = self._state(incident)
        app = self.apps.app(incident.app)
        if app is None:
            return []
        text, blocks = render.notice(self._with_thread(incident, state), phase, app.mention)
        told: list[str] = []
        for channel in app.notify:
            await self._slot(channel)
            if await self._post(channel, text, blocks):
                told.append(channel)
        return told

    async def upload(
        self, incident: Incident, filename: str, content: str, title: str, comment: str = ""
    ) -> None:
        state = self._state(incident)
        send = functools.partial(self._upload_now, state, filename, content, title, comment)
        await self._queue(state, send)

    async def alert(self, incident: Incident, message: Message) -> None:
        text = mrkdwn.render(message)
        state = self._state(incident)
        await self._queue(state, functools.partial(self._alert_now, state, incident, text))

    async def held_notices(self, incident: Incident) -> list[str]:
        return []  # a refused notice is reported by `stakeholders`, never held silently

    async def post_plan(
        self, channel: str, text: str, blocks: list[dict[str, Any]], filename: str, content: str
    ) -> str | None:
        """A plan: its message (with its button) in `channel`, the file in that message's
        thread. The message's permalink; None when it could not be posted."""
        await self._slot(channel)
        ts = await self._post(channel, text, blocks)
        if not ts:
            return None
        await self._slot(channel)
        await self._upload(channel, ts, filename, content, title=filename)
        return await self._permalink(channel, ts) or ""

    # ---- what the background sender does with each queued message ---------------------------

    async def _say_now(self, state: _State, incident: Incident, text: str) -> None:
        where = self._where(state)
        if where is None:
            return
        channel, thread_ts = where
        await self._slot(channel)
        await self._post_text(channel, text, thread_ts, incident=incident)

    async def _ask_now(self, state: _State, incident: Incident, gate: Gate) -> None:
        where = self._where(state)
        if where is None:
            return
        channel, thread_ts = where
        ping = self._ping(incident, gate)
        text, blocks = render.gate(incident, gate, ping)
        _, minimal = render.gate_minimal(incident, gate, ping)
        await self._slot(channel)
        ts = await self._post(channel, text, blocks, thread_ts, fallback_blocks=minimal)
        if ts:
            self._gates[gate.token] = _GateMessage(channel, ts, gate)

    async def _resolve_gate_now(
        self, state: _State, incident: Incident, token: str, fact: AnswerFact, ts: str | None
    ) -> None:
        answer = mrkdwn.render(said.answered(fact, incident.updated_at))
        known = self._gates.pop(token, None)
        if known is not None:
            new_blocks = render.answered(incident, known.gate, answer)
            await self._update(known.channel, known.ts, answer, new_blocks)
            return
        where = self._where(state)
        if where is None:
            return
        channel, thread_ts = where
        message = await self._find_gate_message(channel, thread_ts, token, ts)
        if message is not None:
            new_blocks = render.answered_from_message(message.get("blocks") or [], answer)
            await self._update(channel, str(message["ts"]), answer, new_blocks)
        else:
            await self._slot(channel)
            await self._post_text(channel, answer, thread_ts)

    async def _upload_now(
        self, state: _State, filename: str, content: str, title: str, comment: str
    ) -> None:
        where = self._where(state)
        if where is None:
            return
        channel, thread_ts = where
        await self._slot(channel)
        await self._upload(channel, thread_ts, filename, content, title, comment)

    async def _alert_now(self, state: _State, incident: Incident, text: str) -> None:
        app = self.apps.app(incident.app)
        where = self._where(state)
        if where is not None:
            channel, thread_ts = where
            await self._slot(channel)
            await self._post_text(channel, f"🚨 {text}", thread_ts)
        if app is None:
            return
        body, blocks = render.alert(self._with_thread(incident, state), text, app.mention)
        for channel in app.notify:
            await self._slot(channel)
            await self._post(channel, body, blocks)

    # ---- more Slack surface ------------------------------------------------------------------

    async def ephemeral(
        self, channel: str, user: str, text: str, thread_ts: str | None = None
    ) -> bool:
        resp = await self._safe(
            "chat.postEphemeral",
            lambda: self.client.chat_postEphemeral(
                channel=channel, user=user, text=t.truncate(text, _TEXT_MAX), thread_ts=thread_ts
            ),
        )
        return resp is not None

    async def publish_home(self, user: str, incidents: Sequence[Incident]) -> bool:
        view = render.home(incidents)
        resp = await self._safe(
            "views.publish", lambda: self.client.views_publish(user_id=user, view=view)
        )
        return resp is not None

    def gate_message(self, token: str) -> tuple[str, str] | None:
        """(channel, ts) of the gate message this process posted, if any."""
        known = self._gates.get(token)
        return (known.channel, known.ts) if known else None

    async def aclose(self) -> None:
        """Send everything pending, then stop the background tasks."""
        for state in list(self._states.values()):
            with contextlib.suppress(Exception):
                await self.flush(state.incident)
        self._closed = True
        for state in list(self._states.values()):
            for task in (state.sender, state.parent_sender):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    # ---- per-incident state ------------------------------------------------------------------

    def _state(self, incident: Incident) -> _State:
        state = self._states.get(incident.id)
        if state is None:
            self._forget_idle()
            state = self._states[incident.id] = _State(incident=incident)
        elif incident.version >= state.incident.version:
            state.incident = incident
        if incident.thread is not None and incident.thread.ts:
            state.thread = incident.thread
        state.active = time.monotonic()
        return state

    def _where(self, state: _State) -> tuple[str, str | None] | None:
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
    def _with_thread(incident: Incident, state: _State) -> Incident:
        if incident.thread is None and state.thread is not None:
            return incident.model_copy(update={"thread": state.thread})
        return incident

    def _app(self, incident: Incident) -> AppConfig | None:
        return self.apps.app(incident.app)

    def _ping(self, incident: Incident, gate: Gate) -> str:
        app = self._app(incident)
        if gate.kind in (GateKind.APPROVE_START, GateKind.APPROVE_DB) and app is not None:
            approvers = [
                a for a in app.approvers if not (incident.production and a == incident.requested_by)
            ]
            if approvers:
                return "Approvers: " + " ".join(t.mention(a) for a in approvers)
        return t.mention(incident.requested_by)

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for key, state in list(self._states.items()):
            if now - state.active > _IDLE and not state.busy and not state.incident.status.open:
                del self._states[key]

    # ---- background sending ------------------------------------------------------------------

    async def _queue(self, state: _State, send: Send) -> None:
        """Queue a message behind the incident's earlier ones (output included) and return."""
        if state.lines:  # output that came before stays before
            taken, state.lines = state.lines, {}
            state.outbox.append(functools.partial(self._send_lines, state, taken))
        if self._closed:  # no background task any more: send it now
            state.outbox.append(send)
            while state.outbox:
                await state.outbox.popleft()()
            return
        state.outbox.append(send)
        self._kick(state)

    def _kick(self, state: _State) -> None:
        if self._closed or (state.sender is not None and not state.sender.done()):
            return
        state.sender = asyncio.get_running_loop().create_task(
            self._send_messages(state), context=_context_of(state)
        )

    def _kick_parent(self, state: _State) -> None:
        if self._closed or (state.parent_sender is not None and not state.parent_sender.done()):
            return
        if state.pending_parent is None:
            return
        state.parent_sender = asyncio.get_running_loop().create_task(
            self._send_parents(state), context=_context_of(state)
        )

    async def _send_messages(self, state: _State) -> None:
        """The incident's queued messages in order, then its output; ends when none is left."""
        while state.outbox or state.lines:
            try:
                if state.outbox:
                    await state.outbox.popleft()()
                else:
                    await self._send_output(state)
            except Exception:
                log.exception("Slack notifier: a message of incident %s failed", state.incident.id)

    async def _send_parents(self, state: _State) -> None:
        while state.pending_parent is not None:
            try:
                await self._send_parent(state)
            except Exception:
                log.exception("Slack notifier: parent update of %s failed", state.incident.id)
                await asyncio.sleep(self.min_interval)

    async def _slot(self, channel: str) -> None:
        """Wait for this channel's next message slot (reserved in call order)."""
        now = time.monotonic()
        at = max(now, self._channel_next.get(channel, 0.0))
        self._channel_next[channel] = at + self.min_interval
        if at > now:
            await asyncio.sleep(at - now)

    async def _send_parent(self, state: _State) -> None:
        wait = state.parent_next - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        incident, state.pending_parent = state.pending_parent, None
        if incident is None or incident.version < state.sent_version:
            return
        state.parent_next = time.monotonic() + self.min_interval
        thread = state.thread
        if thread is None or not thread.ts:
            return
        text, blocks = render.parent(incident)
        if await self._update(thread.channel, thread.ts, text, blocks):
            state.sent_version = max(state.sent_version, incident.version)

    async def _send_output(self, state: _State) -> None:
        """The output buffered so far, taken once the channel's slot comes (so more fits)."""
        where = self._where(state)
        if where is not None:
            await self._slot(where[0])
        taken, state.lines = state.lines, {}
        await self._post_lines(state, taken)

    async def _send_lines(self, state: _State, taken: Lines) -> None:
        where = self._where(state)
        if where is not None:
            await self._slot(where[0])
        await self._post_lines(state, taken)

    async def _post_lines(self, state: _State, taken: Lines) -> None:
        if not taken:
            return
        where = self._where(state)
        if where is None:
            count = sum(len(lines) for lines in taken.values())
            log.error("incident %s: %d output lines with nowhere to go", state.incident.id, count)
            return
        channel, thread_ts = where
        groups = [(SPECS[step].title, host, lines) for (step, host), lines in taken.items()]
        hosts = ", ".join(dict.fromkeys(host for _, host, _ in groups))
        count = sum(len(lines) for _, _, lines in groups)
        content = _output_file(groups)
        blocks = render.output(groups, self.max_output_blocks)
        state.files += 1
        incident = state.incident
        filename = f"{incident.app}-{incident.id}-output-{state.files}.log"
        if blocks is not None:
            text = f"Output from {hosts} ({count} line{'s' if count != 1 else ''})"
            await self._post(channel, text, blocks, thread_ts, file=(filename, content))
            return
        titles = ", ".join(dict.fromkeys(title for title, _, _ in groups))
        tail = "\n".join(groups[-1][2][-_COMMENT_TAIL:])
        comment = (
            f"📎 Output of {titles} on {hosts}: {count} lines, too long for a message — "
            f"the whole output is in the file. Last lines from `{groups[-1][1]}`:\n"
            + t.code_block(t.escape(tail), 2_000, keep="tail")
        )
        title = f"Output of {titles} ({hosts})"
        await self._upload(channel, thread_ts, filename, content, title, comment)

    # ---- Slack calls -------------------------------------------------------------------------

    async def _api(
        self,
        method: str,
        call: Callable[[], Awaitable[AsyncSlackResponse]],
        *,
        channel: str | None = None,
    ) -> AsyncSlackResponse:
        """`call()`, retried while Slack is down or rate limiting (HTTP 5xx, 429, `ratelimited`,
        no connection) for up to `outage_for` seconds, after `Retry-After` or a backoff; other
        errors raise. Posts into one channel go one at a time, so that what was said first is
        shown first even when Slack comes back in the middle."""
        if channel is None:
            return await self._retrying(method, call)
        lock = self._channel_locks.setdefault(channel, asyncio.Lock())
        async with lock:
            return await self._retrying(method, call)

    async def _retrying(
        self, method: str, call: Callable[[], Awaitable[AsyncSlackResponse]]
    ) -> AsyncSlackResponse:
        """`call()`, again while Slack is down or rate limiting (beyond what the client's retry
        handlers already absorbed), for up to `outage_for` seconds; other errors raise."""
        failing_since: float | None = None
        attempt = 0
        while True:
            try:
                return await call()
            except SlackApiError as exc:
                if not _transient(exc):
                    raise
                error = _error(exc)
                pause = _retry_after(exc) or self._backoff(attempt)
            except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = type(exc).__name__
                pause = self._backoff(attempt)
            now = time.monotonic()
            failing_since = now if failing_since is None else failing_since
            if now - failing_since + pause > self.outage_for:
                raise
            attempt += 1
            log.warning(
                "Slack %s: %s; retrying in %.1fs (failing for %.0fs)",
                method,
                error,
                pause,
                now - failing_since,
            )
            await asyncio.sleep(pause)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.retry_pause * 2**attempt, max(self.retry_pause, 5.0)))

    def _failed(self, method: str, error: str) -> None:
        self.failures += 1
        self.failures_by_method[method] += 1
        log.warning("Slack %s failed: %s", method, error)
        with contextlib.suppress(Exception):
            from bot.telemetry.metrics import SLACK_ERRORS

            SLACK_ERRORS.labels(method).inc()
        if self.on_failure is not None:
            with contextlib.suppress(Exception):
                self.on_failure(method, error)

    async def _safe(
        self,
        method: str,
        call: Callable[[], Awaitable[AsyncSlackResponse]],
        *,
        channel: str | None = None,
    ) -> AsyncSlackResponse | None:
        try:
            return await self._api(method, call, channel=channel)
        except SlackApiError as exc:
            self._failed(method, _error(exc))
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._failed(method, type(exc).__name__)
        return None

    async def _post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        *,
        fallback_blocks: list[dict[str, Any]] | None = None,
        file: tuple[str, str] | None = None,
    ) -> str | None:
        """chat.postMessage; the ts, or None. Refused as too long/invalid: a simpler form."""
        try:
            resp = await self._api(
                "chat.postMessage",
                lambda: self.client.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, thread_ts=thread_ts
                ),
                channel=channel,
            )
            return str(resp.get("ts") or "") or None
        except SlackApiError as exc:
            error = _error(exc)
            if error not in _FALLBACK_ERRORS:
                self._failed("chat.postMessage", error)
                return None
            log.warning("Slack refused a message (%s); sending a simpler form", error)
            self.fallbacks += 1
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._failed("chat.postMessage", type(exc).__name__)
            return None
        if fallback_blocks is not None:
            ts = await self._post_once(channel, text, fallback_blocks, thread_ts)
            if ts:
                return ts
        plain = _plain(text, blocks)
        if file is not None or len(plain) > _TEXT_MAX:
            name, content = file if file is not None else ("message.txt", plain)
            preview = t.truncate(t.first_line(text) or "Message", 500)
            await self._upload(
                channel,
                thread_ts,
                name,
                content or plain,
                preview,
                f"{preview} — too long for a Slack message, so it is in this file.",
            )
            return None
        return await self._post_once(channel, plain, None, thread_ts)

    async def _post_once(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None,
    ) -> str | None:
        resp = await self._safe(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=channel, text=t.truncate(text, 39_000), blocks=blocks, thread_ts=thread_ts
            ),
            channel=channel,
        )
        if resp is None:
            return None
        return str(resp.get("ts") or "") or None

    async def _post_text(
        self, channel: str, text: str, thread_ts: str | None, *, incident: Incident | None = None
    ) -> str | None:
        if len(text) <= _TEXT_MAX:
            return await self._post(channel, text, None, thread_ts)
        name = f"{incident.app}-{incident.id}-message" if incident else "message"
        head = t.truncate(t.first_line(text), 500)
        await self._upload(
            channel,
            thread_ts,
            f"{name}.txt",
            text,
            head or "Message",
            f"{head}\n(the rest is in the file)",
        )
        return None

    async def _update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> bool:
        try:
            await self._api(
                "chat.update",
                lambda: self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
            )
            return True
        except SlackApiError as exc:
            error = _error(exc)
            if error not in _FALLBACK_ERRORS:
                self._failed("chat.update", error)
                return False
            self.fallbacks += 1
            log.warning("Slack refused an update (%s); sending it as plain text", error)
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._failed("chat.update", type(exc).__name__)
            return False
        plain = t.truncate(_plain(text, blocks), _TEXT_MAX)
        resp = await self._safe(
            "chat.update",
            lambda: self.client.chat_update(channel=channel, ts=ts, text=plain, blocks=[]),
        )
        return resp is not None

    async def _upload(
        self,
        channel: str,
        thread_ts: str | None,
        filename: str,
        content: str,
        title: str,
        comment: str = "",
    ) -> bool:
        resp = await self._safe(
            "files.upload_v2",
            lambda: self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=content,
                filename=filename,
                title=t.truncate(title, 250),
                initial_comment=t.truncate(comment, _TEXT_MAX) if comment else None,
            ),
            channel=channel,
        )
        if resp is not None:
            return True
        # Not silently lost: say in the thread what could not go up, with its last lines.
        lines = content.splitlines()
        tail = "\n".join(lines[-_COMMENT_TAIL:])
        note = (
            f"⚠️ Could not upload `{filename}` ({len(lines)} lines) to Slack; the last lines:\n"
            + t.code_block(t.escape(tail), 3_000, keep="tail")
        )
        await self._post_once(channel, note, None, thread_ts)
        return False

    async def _permalink(self, channel: str, ts: str) -> str:
        resp = await self._safe(
            "chat.getPermalink",
            lambda: self.client.chat_getPermalink(channel=channel, message_ts=ts),
        )
        return str(resp.get("permalink") or "") if resp is not None else ""

    async def _find_gate_message(
        self, channel: str, thread_ts: str | None, token: str, ts: str | None
    ) -> Mapping[str, Any] | None:
        if not thread_ts:
            return None
        block_id = render.gate_block_id(token)
        first = await self._safe(
            "conversations.replies",
            functools.partial(
                self.client.conversations_replies, channel=channel, ts=thread_ts, limit=200
            ),
        )
        if first is None:
            return None
        pages = 0
        try:
            async for page in first:  # the SDK follows `response_metadata.next_cursor`
                for msg in page.get("messages") or []:
                    if not isinstance(msg, Mapping):
                        continue
                    if ts and msg.get("ts") == ts:
                        return msg
                    ids = [str(b.get("block_id", "")) for b in msg.get("blocks") or []]
                    if any(i == block_id or i.startswith(block_id + "-") for i in ids):
                        return msg
                pages += 1
                if pages >= 10:  # a 2,000-reply thread: the gate is not worth more calls
                    break
        except (SlackApiError, SlackClientError, aiohttp.ClientError) as exc:
            self._failed(
                "conversations.replies", _error(exc) if isinstance(exc, SlackApiError) else str(exc)
            )
        return None


def _context_of(state: _State) -> contextvars.Context:
    """A sender's own context: its log lines carry its incident's id, not its starter's."""
    context = contextvars.Context()
    context.run(INCIDENT.set, state.incident.id)
    return context


def _plain(text: str, blocks: Sequence[Mapping[str, Any]] | None) -> str:
    """What the blocks say, as one mrkdwn text (the fallback when Slack refused the blocks)."""
    parts: list[str] = []
    for block in blocks or []:
        for obj in (
            block.get("text"),
            *(block.get("fields") or []),
            *(block.get("elements") or []),
        ):
            is_text = isinstance(obj, Mapping) and obj.get("type") in ("mrkdwn", "plain_text")
            if is_text and isinstance(obj.get("text"), str):
                parts.append(obj["text"])
    return "\n".join(parts) or text


def _output_file(groups: Sequence[tuple[str, str, list[str]]]) -> str:
    out: list[str] = []
    for title, host, lines in groups:
        out.append(f"## {host} · {title}")
        out.extend(lines)
        out.append("")
    return "\n".join(out)
