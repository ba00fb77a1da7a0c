"""The Slack Web API calls the notifier makes, and what it does when Slack says no.

* Slack down or rate limiting (HTTP 5xx, 429, `ratelimited`, no connection): retried for up to
  `outage_for` seconds, after `Retry-After` or a backoff (beyond what the client's retry handlers
  in `slack_api.py` already absorbed).
* `msg_too_long`/`invalid_blocks`: a simpler message, or a file — never dropped.
* Anything else: logged (never the token), counted in `failures`, and swallowed — the workflow
  never crashes because Slack refused one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.fronts.slack import text as t
from bot.fronts.slack.slack_api import error as _error
from bot.fronts.slack.slack_api import install_retry_handlers
from bot.workflow.model import Incident

log = logging.getLogger(__name__)

FALLBACK_ERRORS = frozenset(
    {"msg_too_long", "invalid_blocks", "invalid_blocks_format", "too_many_blocks"}
)
TEXT_MAX = 3_900  # Slack shows longer `text` cut; beyond it a file is friendlier
COMMENT_TAIL = 15
CLIENT_ERRORS = (SlackClientError, aiohttp.ClientError, TimeoutError, OSError)

Call = Callable[[], Awaitable[AsyncSlackResponse]]

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


class SlackCalls:
    """chat.postMessage, chat.update, files.upload_v2 and chat.getPermalink, with the retries
    and fallbacks above; counts what failed for good."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        retry_pause: float = 1.0,
        outage_for: float = 300.0,
        on_failure: Callable[[str, str], None] | None = None,
        on_sent: Callable[[str], None] | None = None,
    ) -> None:
        self.client = install_retry_handlers(client, pause=retry_pause)
        self.on_sent = on_sent
        """Told the channel once Slack has answered a message posted into it (the pacing)."""
        self.retry_pause = retry_pause
        self.outage_for = outage_for
        """Seconds Slack may keep failing (5xx, 429, no connection) before a call gives up."""
        self.on_failure = on_failure
        self.failures = 0
        """Slack calls that failed for good (after retries and fallbacks)."""
        self.failures_by_method: Counter[str] = Counter()
        self.fallbacks = 0
        """Messages Slack refused as they were and that went out in a simpler form."""
        self._channel_locks: dict[str, asyncio.Lock] = {}

    async def api(
        self, method: str, call: Call, *, channel: str | None = None
    ) -> AsyncSlackResponse:
        """`call()`, retried while Slack is down or rate limiting (HTTP 5xx, 429, `ratelimited`,
        no connection) for up to `outage_for` seconds, after `Retry-After` or a backoff; other
        errors raise. Posts into one channel go one at a time, so that what was said first is
        shown first even when Slack comes back in the middle."""
        if channel is None:
            return await self._retrying(method, call)
        lock = self._channel_locks.setdefault(channel, asyncio.Lock())
        async with lock:
            try:
                return await self._retrying(method, call)
            finally:
                if self.on_sent is not None:
                    self.on_sent(channel)

    async def _retrying(self, method: str, call: Call) -> AsyncSlackResponse:
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
            except CLIENT_ERRORS as exc:
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

    def failed(self, method: str, error: str) -> None:
        self.failures += 1
        self.failures_by_method[method] += 1
        log.warning("Slack %s failed: %s", method, error)
        with contextlib.suppress(Exception):
            from bot.telemetry.metrics import SLACK_ERRORS

            SLACK_ERRORS.labels(method).inc()
        if self.on_failure is not None:
            with contextlib.suppress(Exception):
                self.on_failure(method, error)

    async def safe(
        self, method: str, call: Call, *, channel: str | None = None
    ) -> AsyncSlackResponse | None:
        try:
            return await self.api(method, call, channel=channel)
        except SlackApiError as exc:
            self.failed(method, _error(exc))
        except CLIENT_ERRORS as exc:
            self.failed(method, type(exc).__name__)
        return None

    async def post(
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
            resp = await self.api(
                "chat.postMessage",
                lambda: self.client.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, thread_ts=thread_ts
                ),
                channel=channel,
            )
            return str(resp.get("ts") or "") or None
        except SlackApiError as exc:
            error = _error(exc)
            if error not in FALLBACK_ERRORS:
                self.failed("chat.postMessage", error)
                return None
            log.warning("Slack refused a message (%s); sending a simpler form", error)
            self.fallbacks += 1
        except CLIENT_ERRORS as exc:
            self.failed("chat.postMessage", type(exc).__name__)
            return None
        if fallback_blocks is not None:
            ts = await self.post_once(channel, text, fallback_blocks, thread_ts)
            if ts:
                return ts
        flat = plain(text, blocks)
        if file is not None or len(flat) > TEXT_MAX:
            name, content = file if file is not None else ("message.txt", flat)
            preview = t.truncate(t.first_line(text) or "Message", 500)
            await self.upload(
                channel,
                thread_ts,
                name,
                content or flat,
                preview,
                f"{preview} — too long for a Slack message, so it is in this file.",
            )
            return None
        return await self.post_once(channel, flat, None, thread_ts)

    async def post_once(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None,
    ) -> str | None:
        resp = await self.safe(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=channel, text=t.truncate(text, 39_000), blocks=blocks, thread_ts=thread_ts
            ),
            channel=channel,
        )
        if resp is None:
            return None
        return str(resp.get("ts") or "") or None

    async def post_text(
        self, channel: str, text: str, thread_ts: str | None, *, incident: Incident | None = None
    ) -> str | None:
        if len(text) <= TEXT_MAX:
            return await self.post(channel, text, None, thread_ts)
        name = f"{incident.app}-{incident.id}-message" if incident else "message"
        head = t.truncate(t.first_line(text), 500)
        await self.upload(
            channel,
            thread_ts,
            f"{name}.txt",
            text,
            head or "Message",
            f"{head}\n(the rest is in the file)",
        )
        return None

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> bool:
        try:
            await self.api(
                "chat.update",
                lambda: self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
            )
            return True
        except SlackApiError as exc:
            error = _error(exc)
            if error not in FALLBACK_ERRORS:
                self.failed("chat.update", error)
                return False
            self.fallbacks += 1
            log.warning("Slack refused an update (%s); sending it as plain text", error)
        except CLIENT_ERRORS as exc:
            self.failed("chat.update", type(exc).__name__)
            return False
        flat = t.truncate(plain(text, blocks), TEXT_MAX)
        resp = await self.safe(
            "chat.update",
            lambda: self.client.chat_update(channel=channel, ts=ts, text=flat, blocks=[]),
        )
        return resp is not None

    async def upload(
        self,
        channel: str,
        thread_ts: str | None,
        filename: str,
        content: str,
        title: str,
        comment: str = "",
    ) -> bool:
        resp = await self.safe(
            "files.upload_v2",
            lambda: self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=content,
                filename=filename,
                title=t.truncate(title, 250),
                initial_comment=t.truncate(comment, TEXT_MAX) if comment else None,
            ),
            channel=channel,
        )
        if resp is not None:
            return True
        # Not silently lost: say in the thread what could not go up, with its last lines.
        lines = content.splitlines()
        tail = "\n".join(lines[-COMMENT_TAIL:])
        note = (
            f"⚠️ Could not upload `{filename}` ({len(lines)} lines) to Slack; the last lines:\n"
            + t.code_block(t.escape(tail), 3_000, keep="tail")
        )
        await self.post_once(channel, note, None, thread_ts)
        return False

    async def permalink(self, channel: str, ts: str) -> str:
        resp = await self.safe(
            "chat.getPermalink",
            lambda: self.client.chat_getPermalink(channel=channel, message_ts=ts),
        )
        return str(resp.get("permalink") or "") if resp is not None else ""


def plain(text: str, blocks: Sequence[Mapping[str, Any]] | None) -> str:
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
