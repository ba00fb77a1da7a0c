"""A broken installation is refused at start-up: one line naming the setting, exit 1, no
traceback — `serve` and `worker` run as real processes, as a user starts them."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.processes import run_bot
from tests.slack_fake import SlackFake

APP = {
    "environment": "staging",
    "repo": "/tmp/myapp.git",
    "incident_channel": "C0INCIDENT",
    "operators": ["U0CAROL"],
    "ssh": {"transport": "local"},
    "hosts": [{"name": "web1", "address": "127.0.0.1"}],
    "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
}


def base_env(slack: SlackFake, redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "SLACK_BOT_TOKEN": "xoxb-good",
        "SLACK_SIGNING_SECRET": "s3cret-signing",
        "SLACK_API_URL": slack.api_url,
        "REDIS_URL": redis_url,
    }
    if "PYTHONPATH" in os.environ:  # a checkout beside the installed one (not in CI)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return {**env, **extra}


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A directory laid out as the README says: config/apps.yaml in it."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "apps.yaml").write_text(yaml.safe_dump({"apps": {"myapp": APP}}))
    return tmp_path


def refused(code: int, out: str, *words: str) -> str:
    assert code == 1, out
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked", "not_authed"])
async def test_a_token_slack_refuses_stops_serve_and_worker(
    slack: SlackFake, redis_url: str, installed: Path, error: str
) -> None:
    env = base_env(slack, redis_url, METRICS_PORT="0", PORT="0")
    for args in (["serve"], ["worker"]):
        slack.fail_next("auth.test", ok_false=error)
        code, out = await run_bot(args, env, installed)
        refused(code, out, "SLACK_BOT_TOKEN", error, "xoxb-")
        assert "xoxb-good" not in out


async def test_socket_mode_with_a_refused_app_token(
    slack: SlackFake, redis_url: str, installed: Path
) -> None:
    env = base_env(slack, redis_url, SLACK_APP_TOKEN="xapp-1-refused")
    code, out = await run_bot(["serve"], env, installed)
    line = refused(code, out, "SLACK_APP_TOKEN", "invalid_auth", "xapp-")
    assert "xapp-1-refused" not in line
    assert slack.calls_to("apps.connections.open")  # asked once, not in a loop


async def test_a_port_in_use_names_its_setting(
    slack: SlackFake, redis_url: str, installed: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, out = await run_bot(["serve"], base_env(slack, redis_url, PORT=port), installed)
        refused(code, out, f"port {port} is already in use (PORT)", "set PORT")
        env = base_env(slack, redis_url, METRICS_PORT=port)
        code, out = await run_bot(["worker"], env, installed)
        refused(code, out, f"port {port} is already in use (METRICS_PORT)")


async def test_a_missing_apps_file_points_at_the_example(
    slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    for args in (["serve"], ["worker"]):
        code, out = await run_bot(args, base_env(slack, redis_url), tmp_path)
        refused(code, out, str(tmp_path / "config" / "apps.yaml"), "config/apps.example.yaml")
    assert not slack.calls  # nothing was asked of Slack for a process that cannot work


async def test_settings_that_cannot_be_read_name_the_variable(
    slack: SlackFake, redis_url: str, installed: Path
) -> None:
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"PORT": "web"}, ("PORT", "'web'")),
        ({"LOG_FORMAT": "xml"}, ("LOG_FORMAT", "'xml'")),
        ({"SLACK_SIGNING_SECRET": ""}, ("SLACK_SIGNING_SECRET",)),
    ]
    for extra, words in cases:
        env = base_env(slack, redis_url, **extra)
        if not extra.get("SLACK_SIGNING_SECRET", "x"):
            del env["SLACK_SIGNING_SECRET"]
        code, out = await run_bot(["serve"], env, installed)
        refused(code, out, *words)


def test_workers_on_one_machine_take_the_next_metrics_port() -> None:
    from bot.app.startup import bind_metrics
    from bot.workflow.errors import StartupError

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=r"\(METRICS_PORT\)"):
            bind_metrics(port, pinned=True)  # set by the operator: that port or nothing
        moved = bind_metrics(port, pinned=False)  # the default: the next free one
        try:
            assert port < moved.getsockname()[1] < port + 32
        finally:
            moved.close()
