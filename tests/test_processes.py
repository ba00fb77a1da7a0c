"""The Procfile's processes as real subprocesses: `serve` answers Slack and /healthz."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.fixtures_hosts import SshEnv
from tests.harness import SECRET, settings_env, write_apps
from tests.slack_fake import SlackFake, send_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert asyncio.get_running_loop().time() < deadline, f"{url} never answered"
            await asyncio.sleep(0.2)


async def test_serve_with_worker_runs_a_rollback_to_the_decision(
    slack: SlackFake, redis_url: str, ssh_env: SshEnv, tmp_path: Path
) -> None:
    config = write_apps(tmp_path / "apps.yaml", {"myapp": ssh_env.app_config()}, tmp_path / "inc")
    port = free_port()
    env: dict[str, Any] = {**os.environ, **settings_env(slack, redis_url, config, tmp_path / "ws")}
    env["PORT"] = str(port)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--with-worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"{base}/healthz")
        async with aiohttp.ClientSession() as session:
            url = slack.response_url("proc")
            events = f"{base}/slack/events"
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
            async with session.get(f"{base}/metrics") as metrics:
                assert "rewind_open_incidents 1.0" in await metrics.text()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave a bot behind, even when the test fails
            proc.wait(5)
        log.close()
    assert proc.returncode in (0, -15)
