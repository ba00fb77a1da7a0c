"""The Bolt app, built by one factory (as bolt-python's examples do), and how requests reach it:
`/slack/events` over HTTP (aiohttp), or a Socket Mode connection.

Only Bolt's public API. `/rollback` and the incident's buttons are plain listeners that ack and
start their own work after it (`bot.fronts.slack.after_ack`); the watch's are registered with
`ack=`/`lazy=[...]`, their lazy halves wrapped (`InFlight.track`). `serve` lets both kinds under
way finish before it exits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.fronts.slack.listeners import SlackFront, register
from bot.fronts.slack.watch_slack import WatchFront, register_watch

log = logging.getLogger(__name__)
P = ParamSpec("P")


@dataclass
class InFlight:
    """The lazy listeners running now: Bolt starts each as a task of its own."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def track(self, listener: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
        # functools.wraps keeps the listener's signature: Bolt passes arguments by their names.
        @functools.wraps(listener)
        async def tracked(*args: P.args, **kwargs: P.kwargs) -> None:
            task = asyncio.current_task()
            if task is not None:
                self.tasks.add(task)
            try:
                await listener(*args, **kwargs)
            finally:
                if task is not None:
                    self.tasks.discard(task)

        return tracked

    async def drain(self, timeout: float) -> None:
        await asyncio.sleep(0)  # a lazy listener Bolt has just scheduled starts first
        if self.tasks:
            log.info("finishing %d request(s) in flight", len(self.tasks))
            await asyncio.wait(list(self.tasks), timeout=timeout)


@dataclass
class SlackApp:
    bolt: AsyncApp
    front: SlackFront
    in_flight: InFlight
    signing_secret: str | None = field(repr=False)  # never in a log line

    async def events(self, request: web.Request) -> web.Response:
        """`/slack/events`: a request Slack signed, handed to Bolt; anything else refused."""
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not (stamp.isascii() and stamp.isdigit()) and self.signing_secret is not None:
            # slack_sdk would raise on it (and Bolt answer 500): not a request Slack signed.
            return web.Response(status=401, text="invalid request timestamp")
        try:
            bolt_request = await to_bolt_request(request)
        except ValueError:
            # Bolt parses the body before it checks the signature: a body that is not Slack's
            # JSON gets a 401 when unsigned (as any forged request) and a 400 when signed.
            return await self._not_a_slack_request(request)
        self.front.after.answering()  # the work after the acks waits meanwhile
        try:
            response = await self.bolt.async_dispatch(bolt_request)
            return await to_aiohttp_response(response)
        finally:
            self.front.after.answered()

    async def _not_a_slack_request(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = self.signing_secret
        signed = secret is None or SignatureVerifier(secret).is_valid_request(
            body, dict(request.headers)
        )
        if not signed:
            return web.Response(status=401, text="invalid request signature")
        log.warning("a signed request to /slack/events had a body that is not Slack's; refused")
        return web.Response(status=400, text="not a Slack request")

    async def drain(self, timeout: float) -> None:
        """The work after the acks under way, and the lazy listeners, finish (up to `timeout`)."""
        await asyncio.gather(self.front.after.drain(timeout), self.in_flight.drain(timeout))

    async def aclose(self) -> None:
        await self.front.responses.aclose()

    def socket_mode(self, app_token: str) -> SocketMode:
        return SocketMode(AsyncSocketModeHandler(self.bolt, app_token))


@dataclass
class SocketMode:
    handler: AsyncSocketModeHandler

    async def connect(self) -> None:
        await self.handler.connect_async()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self.handler.close_async()  # type: ignore[no-untyped-call]


def slack_app(
    client: AsyncWebClient, signing_secret: str | None, front: SlackFront, watch: WatchFront
) -> SlackApp:
    """The Bolt app with Rewind's listeners. No `signing_secret`: Socket Mode (no request
    reaches it unsigned, as there is no `/slack/events`)."""
    bolt = AsyncApp(
        client=client,
        logger=_bolt_logger(),
        signing_secret=signing_secret,
        request_verification_enabled=signing_secret is not None,
        # The ack listeners do no I/O; answering as soon as they return saves Bolt's 10 ms poll.
        process_before_response=True,
        name="rewind",
    )
    in_flight = InFlight()
    register(bolt, front)
    register_watch(bolt, watch, in_flight.track)
    return SlackApp(bolt, front, in_flight, signing_secret)


# Bolt reads SLACK_BOT_TOKEN from the environment itself and warns that the client's token wins;
# it is the same token, so the warning would only alarm whoever reads the log.
_TOKEN_SKIPPED = "As you gave `client` as well, `token` will be unused."


class _NoTokenWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _TOKEN_SKIPPED


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _NoTokenWarning) for f in logger.filters):
        logger.addFilter(_NoTokenWarning())
    return logger
