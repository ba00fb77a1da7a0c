"""A Slack Web API that misbehaves (a proxy's HTML page instead of Slack's JSON) is retried or
reported; it never breaks the bot's next commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError

from bot.config.apps_file import parse_apps
from bot.fronts.slack.groups import GroupResolver
from bot.fronts.slack.slack_api import make_client
from tests.fixtures_hosts import SshEnv
from tests.test_rollback_command import START

PAGE = "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"


class Proxy:
    """Answers the next `faults` calls with (status, content type); then like Slack."""

    def __init__(self) -> None:
        self.faults: list[tuple[int, str]] = []
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.faults:
            status, kind = self.faults.pop(0)
            return web.Response(status=status, text=PAGE, content_type=kind)
        return web.json_response({"ok": True, "users": ["U0DAVE"]})


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[Proxy, str]]:
    p = Proxy()
    app = web.Application()
    app.router.add_route("*", "/api/{method}", p.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield p, f"http://127.0.0.1:{port}/api/"
    await runner.cleanup()


def resolver(url: str) -> GroupResolver:
    app = {
        "repo": "/tmp/x.git",
        "incident_channel": "C1",
        "operators": ["S0ONCALL"],
        "ssh": {"transport": "local"},
        "approvers": ["U0ALICE"],
        "hosts": [{"name": "web1", "address": "127.0.0.1"}],
        "deploy": {"strategy": "systemd", "workdir": "/srv/x", "service": "x"},
    }
    return GroupResolver(make_client("xoxb-x", url), parse_apps({"apps": {"x": app}}, "x"))


@pytest.mark.parametrize("kind", ["text/html", "text/plain"])
async def test_a_gateway_error_page_is_retried(proxy: tuple[Proxy, str], kind: str) -> None:
    p, url = proxy
    p.faults = [(502, kind)]
    actor = await resolver(url).actor("U0DAVE")
    assert actor.groups == frozenset({"S0ONCALL"})  # the retry got Slack's real answer
    assert p.calls == 2


@pytest.mark.parametrize(("status", "kind"), [(405, "text/html"), (405, "text/plain"),
                                              (200, "text/plain"), (200, "text/html")])  # fmt: skip
async def test_a_page_that_is_not_json_is_reported_not_raised(
    proxy: tuple[Proxy, str], status: int, kind: str
) -> None:
    p, url = proxy
    p.faults = [(status, kind)]
    client = make_client("xoxb-x", url)
    with pytest.raises(SlackApiError) as info:
        await client.usergroups_users_list(usergroup="S0ONCALL")
    assert info.value.response.get("error") == "non_json_response"
    assert f"HTTP {status}" in str(info.value) and "not JSON" in str(info.value)

    groups = resolver(url)
    p.faults = [(status, kind)]
    assert (await groups.actor("U0DAVE")).groups == frozenset()  # fails closed, no exception
    assert (await groups.actor("U0DAVE")).groups == {"S0ONCALL"}  # not cached: asked again


async def test_commands_still_work_after_slack_answered_html(
    make_bot: Any, ssh_env: SshEnv
) -> None:
    cfg = ssh_env.app_config()
    cfg["operators"] = ["S0ONCALL"]  # rights come from a user group: Slack must be asked
    async with make_bot({"myapp": cfg}, with_worker=False) as bot:
        bot.slack.fail_next("usergroups.users.list", status=405, body=PAGE)
        _, first = await bot.command(START, user="U0DAVE")
        refused = await bot.reply(first)
        assert "Something went wrong" not in refused and "not an operator" in refused
        _, listed = await bot.command("list", user="U0DAVE")
        assert "Something went wrong" not in await bot.reply(listed)
        _, second = await bot.command(START, user="U0DAVE")
        assert "opened" in await bot.reply(second)
