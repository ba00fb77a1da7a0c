"""Who is in which Slack user group: operators and approvers may be groups (S…)."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.apps_file import AppsFile
from bot.workflow.policy import Actor

log = logging.getLogger(__name__)


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code, whatever the answer was (a proxy may send an HTML page)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {getattr(exc.response, 'status_code', '?')}"


class GroupResolver:
    """Resolves a user's groups among those the apps file names, cached for `ttl` seconds."""

    def __init__(self, client: AsyncWebClient, apps: AppsFile, ttl: float = 60.0) -> None:
        self.client = client
        self.ttl = ttl
        self.groups = sorted(
            {
                g
                for app in apps.apps.values()
                for g in (*app.operators, *app.approvers)
                if g.startswith("S")
            }
        )
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group: str) -> frozenset[str]:
        cached = self._cache.get(group)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        try:
            resp = await self.client.usergroups_users_list(usergroup=group)
            users = frozenset(resp.get("users") or [])
        except SlackApiError as exc:
            # Fail closed: an unreadable group grants nothing.
            log.warning("cannot read user group %s: %s", group, slack_error(exc))
            if slack_error(exc) == "non_json_response":
                return frozenset()  # a proxy's hiccup: not cached, asked again next time
            users = frozenset()
        except Exception as exc:  # the network: same rule, and no cache so it is asked again
            log.warning("cannot reach Slack for user group %s: %r", group, exc)
            return frozenset()
        self._cache[group] = (time.monotonic(), users)
        return users

    async def actor(self, user: str) -> Actor:
        mine = [g for g in self.groups if user in await self.members(g)]
        return Actor(user=user, groups=frozenset(mine))
