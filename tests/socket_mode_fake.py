"""A local stand-in of Slack's Socket Mode, beside the Web API fake (tests/slack_fake.py).

As Slack does it: `apps.connections.open` (called with the app-level token) answers a `ws://`
URL on 127.0.0.1; on connect the server says `hello`; it then sends envelopes
(`slash_commands`, `interactive`) and each must be acknowledged with a message carrying its
`envelope_id` (and, for a command, the ack's text as `payload`). Pings are answered (slack_sdk's
aiohttp client checks them). Nothing here is signed: Socket Mode needs no signing secret.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from tests.slack_fake import APP_ID, TEAM_DOMAIN, TEAM_ID, SlackFake, block_actions_payload, buttons


@dataclass
class Envelope:
    envelope_id: str
    type: str
    payload: dict[str, Any]
    ack: dict[str, Any] | None = None


class SocketModeFake:
    """`async with SocketModeFake(slack) as sm:` — then `await sm.command(...)`, `sm.click(...)`."""

    def __init__(self, slack: SlackFake) -> None:
        self.slack = slack
        self.url = ""
        self.opened = 0  # apps.connections.open calls
        self.envelopes: list[Envelope] = []
        self.stray: list[Any] = []  # messages from the client that acknowledge nothing we sent
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> SocketModeFake:
        app = web.Application()
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}/link"
        prefixes = self.slack.accepted_token_prefixes
        self.slack.accepted_token_prefixes = (*prefixes, "xapp-")
        self.slack.handlers["apps.connections.open"] = self._open
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _open(self, args: dict[str, Any]) -> dict[str, Any]:
        self.opened += 1
        return {"ok": True, "url": f"{self.url}?ticket={uuid.uuid4()}&app_id={APP_ID}"}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)  # answers the client's pings with pongs
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "rewind-test", "approximate_connection_time": 3600},
                "connection_info": {"app_id": APP_ID},
            }
        )
        self._connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                waiting = self._acks.get(str(data.get("envelope_id", "")))
                if waiting is None or waiting.done():
                    self.stray.append(data)
                else:
                    waiting.set_result(data)
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._connected.clear()
        return ws

    async def connected(self, timeout: float = 30) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send(self, kind: str, payload: Mapping[str, Any], timeout: float = 10) -> Envelope:
        """Send one envelope; return it once acknowledged with its own envelope_id."""
        await self.connected()
        envelope = Envelope(str(uuid.uuid4()), kind, dict(payload))
        self.envelopes.append(envelope)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope.envelope_id] = future
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope.envelope_id,
                "type": kind,
                "payload": envelope.payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        try:
            envelope.ack = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(
                f"{kind} envelope {envelope.envelope_id} not acknowledged"
            ) from None
        assert envelope.ack["envelope_id"] == envelope.envelope_id
        return envelope

    async def command(
        self, text: str, *, user_id: str, response_url: str, channel_id: str = "C0OPS"
    ) -> Envelope:
        """`/rollback text` as Slack sends it over Socket Mode (a `slash_commands` envelope)."""
        payload = {
            "token": "fake-verification-token",
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": "ops",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": "/rollback",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{uuid.uuid4().int % 10**10}.{uuid.uuid4().hex[:10]}",
        }
        return await self.send("slash_commands", payload)

    async def click(
        self,
        message: Mapping[str, Any],
        label: str,
        *,
        user_id: str,
        channel_id: str,
        response_url: str,
    ) -> Envelope:
        """A click on the button of `message` whose label contains `label`."""
        found = [b for b in buttons(message) if label.lower() in b.text.lower()]
        if not found:
            labels = [b.text for b in buttons(message)]
            raise AssertionError(f"no button containing {label!r}; buttons: {labels}")
        button = found[0]
        payload = block_actions_payload(
            user_id=user_id,
            action_id=button.action_id,
            value=button.value,
            block_id=button.block_id,
            channel_id=channel_id,
            message_ts=str(message["ts"]),
            thread_ts=message.get("thread_ts"),
            response_url=response_url,
            message=message,
        )
        return await self.send("interactive", payload)

    def ack_text(self, envelope: Envelope) -> str:
        payload = (envelope.ack or {}).get("payload") or {}
        return str(payload.get("text", ""))
