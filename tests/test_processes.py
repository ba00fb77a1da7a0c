"""The Procfile's processes as real subprocesses: `serve` answers Slack and /healthz."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.fixtures_hosts import SshEnv
from tests.harness import SECRET, settings_env, write_apps
from tests.processes import Serve
from tests.slack_fake import SlackFake, send_command


async def test_serve_with_worker_runs_a_rollback_to_the_decision(
    slack: SlackFake,
    redis_url: str,
    ssh_env: SshEnv,
    tmp_path: Path,
    serve_factory: Callable[..., Serve],
) -> None:
    config = write_apps(tmp_path / "apps.yaml", {"myapp": ssh_env.app_config()}, tmp_path / "inc")
    serve = serve_factory(settings_env(slack, redis_url, config, tmp_path / "ws"), "--with-worker")
    await serve.start()
    async with aiohttp.ClientSession() as session:
        url = slack.response_url("proc")
        events = f"{serve.url}/slack/events"
        text = "myapp v1.4.2 checkout 500"
        resp = await send_command(session, events, SECRET, text=text, response_url=url)
        assert resp.status == 200
        await slack.wait_for(lambda c: c.method == "response_url", timeout=30)
        await slack.wait_until(
            lambda: any(
                "Roll back" in b.text
                for m in slack.messages("C0INCIDENT")
                for b in slack.buttons(m)
            ),
            timeout=60,
            what="the decision buttons",
        )
        async with session.get(f"{serve.url}/metrics") as metrics:
            assert "rewind_open_incidents 1.0" in await metrics.text()
    # Off the loop: the Slack stand-in runs on it, and serve sends the output still queued.
    assert await asyncio.to_thread(serve.close) in (0, -15)  # SIGTERM: a clean exit
