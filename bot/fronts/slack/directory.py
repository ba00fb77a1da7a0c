"""`bot.ports.Directory` on Slack: the names people know, from `users.info`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)
ASK_FOR = 5.0  # seconds per user: a report is never held up long by Slack


class SlackDirectory:
    def __init__(self, client: AsyncWebClient, timeout: float = ASK_FOR) -> None:
        self.client = client
        self.timeout = timeout
        self._known: dict[str, str] = {}

    async def names(self, user_ids: Collection[str]) -> dict[str, str]:
        for uid in sorted(set(user_ids) - set(self._known)):
            if uid.startswith(("U", "W")) and (name := await self._ask(uid)):
                self._known[uid] = name
        return {uid: self._known[uid] for uid in user_ids if uid in self._known}

    async def _ask(self, uid: str) -> str:
        try:
            resp = await asyncio.wait_for(self.client.users_info(user=uid), self.timeout)
        except Exception as exc:  # Slack down, a user it does not know: the id stays
            log.info("users.info %s: %s", uid, exc)
            return ""
        user = resp.get("user") or {}
        profile = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("name")
        return str(name or "")
