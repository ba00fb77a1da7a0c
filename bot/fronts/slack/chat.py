"""Slack's Web API behind the `Chat` port (`bot.fronts.port`), and the calls that check it.

Everything outside this adapter that needs Slack comes here: the terminal's stakeholder notices
and people's names (`users.info`), the held notices `serve`/`worker` post, `auth.test` at start-up
and in `check --connect`, and Socket Mode's app-level token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.fronts.port import ChatUnavailable
from bot.fronts.slack import mrkdwn
from bot.fronts.slack.slack_api import make_client
from bot.workflow.errors import StartupError
from bot.workflow.messages import Message

log = logging.getLogger(__name__)

# Slack's answers that mean "this token is not a valid one": nothing will work until it is fixed.
_BAD_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
_BAD_APP_TOKEN = _BAD_TOKEN | {"not_allowed_token_type", "invalid_token_type"}


class SlackChat:
    """`Chat` on Slack's Web API. `client` None: Slack did not answer; nothing is posted."""

    def __init__(self, client: AsyncWebClient | None) -> None:
        self.client = client

    @property
    def reachable(self) -> bool:
        return self.client is not None

    def render(self, message: Message, ping: Sequence[str] = ()) -> str:
        body = mrkdwn.render(message)
        mentions = " ".join(p for p in ping if p)
        return f"{mentions} {body}" if mentions else body

    async def post(self, channel: str, text: str) -> None:
        if self.client is None:
            raise ChatUnavailable("Slack does not answer")
        try:
            await self.client.chat_postMessage(channel=channel, text=text)
        except Exception as exc:
            raise ChatUnavailable(str(exc)) from None

    async def names(self, ids: Iterable[str], timeout: float = 5.0) -> dict[str, str]:
        """`users.info` for each person (user groups are left out); silent if Slack is down."""
        found: dict[str, str] = {}
        if self.client is None:
            return found
        for uid in sorted(set(ids)):
            if not uid.startswith(("U", "W")):
                continue
            try:
                resp = await asyncio.wait_for(self.client.users_info(user=uid), timeout)
            except Exception as exc:  # Slack down, unknown user: the id stays
                log.debug("users.info %s: %s", uid, exc)
                continue
            user = resp.get("user") or {}
            profile = user.get("profile") or {}
            name = profile.get("display_name") or user.get("name") or profile.get("real_name")
            if name:
                found[uid] = str(name)
        return found


async def quick_chat(token: str, api_url: str | None) -> SlackChat:
    """For the terminal: Slack if it answers `auth.test` at once (one quick try: Slack is
    probably why the terminal is used), else a `SlackChat` that posts nothing."""
    candidate = make_client(token, api_url, timeout=5)
    candidate.retry_handlers.clear()
    try:
        await asyncio.wait_for(candidate.auth_test(), 8)
    except Exception:
        return SlackChat(None)
    return SlackChat(candidate)


async def check_bot_token(client: AsyncWebClient) -> str:
    """auth.test: refuse a token Slack refuses; returns who the bot is, for the log."""
    try:
        resp = await client.auth_test()
    except SlackApiError as exc:
        error = _error_of(exc)
        if error in _BAD_TOKEN:
            raise StartupError(
                f"Slack refuses SLACK_BOT_TOKEN ({error}): set it to the app's Bot User OAuth "
                "Token (xoxb-…, on the app's OAuth & Permissions page; reinstall the app if it "
                "was revoked)."
            ) from None
        log.warning("Slack auth.test answered %s; starting anyway", error)
        return "?"
    except Exception as exc:  # the network: Slack may come back, the steps retry their calls
        log.warning("Slack cannot be reached for auth.test (%s); starting anyway", _short(exc))
        return "?"
    return f"{resp.get('user', '?')} in {resp.get('team', '?')}"


async def check_app_token(client: AsyncWebClient, app_token: str) -> None:
    """Socket Mode: apps.connections.open with the app-level token, once, before the loop
    that would otherwise retry a refused token forever."""
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = _error_of(exc)
        if error in _BAD_APP_TOKEN:
            raise StartupError(
                f"Slack refuses SLACK_APP_TOKEN ({error}): set it to an app-level token "
                "(xapp-…, Basic Information → App-Level Tokens, scope connections:write), "
                "with Socket Mode enabled for the app."
            ) from None
        raise StartupError(
            f"Slack refuses Socket Mode ({error}): enable Socket Mode in the app's settings, "
            "or unset SLACK_APP_TOKEN to serve over HTTP."
        ) from None


async def connect_problems(token: str, api_url: str) -> list[str]:
    """`check --connect`: auth.test with the bot token, each failure as one line to act on."""
    client = make_client(token, api_url)
    try:
        await client.auth_test()
    except SlackApiError as exc:
        return [f"Slack auth.test: {exc.response.get('error')} — check SLACK_BOT_TOKEN"]
    except Exception as exc:
        return [f"Slack auth.test at {api_url}: {exc} — network or SLACK_API_URL"]
    return []


def _error_of(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    except Exception:
        return f"HTTP {getattr(exc.response, 'status_code', '?')}"


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]
