"""The other doors: App Home, /healthz, /metrics, the freeze API, `check --connect`, the
terminal front, and a restart of every process in the middle of an incident."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli.check import run_check
from bot.config.apps_file import load_apps
from bot.config.settings import Settings
from tests.fixtures_hosts import SshEnv
from tests.harness import SECRET, Bot, running_bot
from tests.slack_fake import SlackFake, send_event
from tests.test_workflow_e2e import config, start


async def test_app_home_lists_open_incidents(bot: Bot) -> None:
    await start(bot)
    await bot.gate("Roll back")
    incident = await bot.incident()
    event = {"type": "app_home_opened", "user": "U0ALICE", "tab": "home", "channel": "D1"}
    resp = await send_event(bot.session, bot.events_url, SECRET, event=event)
    assert resp.status == 200
    call = await bot.slack.wait_for("views.publish")
    view = call.args["view"]
    assert view["type"] == "home"
    assert incident.id in str(view) and "myapp" in str(view)


async def test_healthz_metrics_and_freeze_of_an_unknown_app(bot: Bot) -> None:
    async with bot.session.get(f"{bot.url}/healthz") as resp:
        assert resp.status == 200 and (await resp.json())["redis"] is True
    await start(bot)
    async with bot.session.get(f"{bot.url}/metrics") as resp:
        text = await resp.text()
        assert resp.status == 200 and "rewind_open_incidents 1.0" in text
        assert 'rewind_incidents_opened_total{app="myapp"}' in text
    async with bot.session.get(f"{bot.url}/api/freeze/nosuchapp") as resp:
        assert resp.status == 404
    # While the incident is open CI's routine deploys wait; the responders' fix names it.
    async with bot.session.get(f"{bot.url}/api/freeze/myapp") as resp:
        body = await resp.json()
        assert resp.status == 423 and body["frozen"] is True and "is open" in body["reason"]
    async with bot.session.get(f"{bot.url}/api/freeze/myapp?incident={body['incident']}") as resp:
        assert resp.status == 200 and (await resp.json())["frozen"] is False


async def test_check_connect_reaches_hosts_redis_and_slack(
    ssh_env: SshEnv, slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    def settings(cfg: dict[str, Any]) -> Settings:
        path = tmp_path / "apps.yaml"
        path.write_text(yaml.safe_dump({"apps": {"myapp": cfg}}))
        return Settings.model_validate(
            {"REWIND_CONFIG": str(path), "REDIS_URL": redis_url,
             "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.api_url}
        )  # fmt: skip

    out = io.StringIO()
    assert await run_check(settings(ssh_env.app_config()), connect=True, out=out) == 0
    assert "all well" in out.getvalue()
    broken = ssh_env.app_config()
    broken["hosts"][1]["port"] = 1
    out = io.StringIO()
    assert await run_check(settings(broken), connect=True, out=out) == 1
    # Caught before connecting: known_hosts has no entry for that port.
    assert "has no entry for [127.0.0.1]:1 (host web2)" in out.getvalue()
    known = Path(broken["ssh"]["known_hosts"])
    key = known.read_text().splitlines()[0].split(" ", 1)[1]
    with known.open("a") as f:
        f.write(f"[127.0.0.1]:1 {key}\n")
    out = io.StringIO()
    assert await run_check(settings(broken), connect=True, out=out) == 1
    assert "myapp/web2: host: connection to 127.0.0.1:1 refused" in out.getvalue()
    missing_key = ssh_env.app_config()
    missing_key["ssh"]["client_keys"] = [str(tmp_path / "no_such_key")]
    out = io.StringIO()
    assert await run_check(settings(missing_key), connect=True, out=out) == 1
    assert "cannot read the client key" in out.getvalue()
    assert slack.calls_to("auth.test")


def test_terminal_rollback_when_slack_is_down(
    ssh_env: SshEnv, redis_url: str, tmp_path: Path
) -> None:
    cfg = config(ssh_env)
    path = tmp_path / "apps.yaml"
    path.write_text(
        yaml.safe_dump({"apps": {"myapp": cfg}, "incidents": {"dir": str(tmp_path / "inc")}})
    )
    load_apps(path)
    env = {
        **os.environ,
        "REWIND_CONFIG": str(path),
        "REDIS_URL": redis_url,
        "REWIND_WORKSPACE": str(tmp_path / "ws"),
        "SLACK_API_URL": "http://127.0.0.1:1/api/",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "rollback", "myapp", "v1.4.2", "--reason", "500s", "--yes"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Recovered: myapp is back on v1.4.2" in proc.stdout
    for host in ssh_env.hosts:
        assert host.run("cat VERSION").strip() == "1.4.2"


@pytest.mark.timeout(300)  # two bots, one after the other, on a loaded machine
async def test_every_process_restarted_mid_incident_loses_nothing(
    make_bot: Any, ssh_env: SshEnv
) -> None:
    cfg = config(ssh_env)
    cfg["monitor"] = {"duration": "4s", "interval": "0.5s"}
    async with make_bot({"myapp": cfg}) as first:
        await start(first)
        await first.click(await first.gate("Roll back"), "Roll back", "U0CAROL")
        await first.wait_step("monitor")
        incident = await first.incident()
    # Everything stopped; new web and worker processes come up against the same Redis and the
    # same queue, as a deploy of Rewind restarts them (a queue of their own would never see
    # the first worker's job: only the same queue's sweep takes over a dead worker's job).
    env = {**first.env, "REWIND_WORKER_ID": "in-process-bot-restarted"}
    async with running_bot(first.slack, env) as second:
        done = await second.wait_status("completed", timeout=120)
        assert done.id == incident.id
        assert "resumed" in second.thread_text()
