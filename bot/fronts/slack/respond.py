"""Answers on a command's or a click's `response_url`, all through one HTTP session.

Bolt's `respond` opens an HTTP session, and so a new connection, for every answer; under a burst
of commands that is a TCP handshake per answer on the loop that the acks share. Here every answer
goes through one `aiohttp` session (its connections kept alive), opened on first use and closed
when `serve` stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp
from slack_sdk.webhook.async_client import AsyncWebhookClient

TIMEOUT = 30  # seconds, as Bolt's respond


class Respond(Protocol):
    """What the listeners answer through (Bolt's `AsyncRespond` is one)."""

    async def __call__(
        self,
        text: str = "",
        blocks: Sequence[dict[str, Any]] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
    ) -> object: ...


class Responses:
    """One HTTP session for every `response_url` answer of this process."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        return self._session

    def to(self, response_url: str | None) -> ResponseUrl:
        return ResponseUrl(response_url or None, self)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class ResponseUrl:
    """`respond` for one `response_url`, as Bolt's: the same message, the same errors."""

    def __init__(self, url: str | None, responses: Responses) -> None:
        self.url = url
        self.responses = responses

    async def __call__(
        self,
        text: str = "",
        blocks: Sequence[dict[str, Any]] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
    ) -> object:
        if self.url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        message: dict[str, Any] = {"text": text}
        if blocks:
            message["blocks"] = list(blocks)
        if response_type is not None:
            message["response_type"] = response_type
        if replace_original is not None:
            message["replace_original"] = replace_original
        client = AsyncWebhookClient(self.url, session=self.responses.session())
        return await client.send_dict(message)
