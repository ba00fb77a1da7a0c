"""`/rollback` end to end: signed Slack request -> incident -> SSH hosts -> thread."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_hosts import SshEnv
from tests.harness import INCIDENT_CHANNEL, Bot

START = "myapp v1.4.2 checkout returns 500"


def ssh_logins(env: SshEnv) -> int:
    return sum(h.sshd_log.read_text().count("Accepted publickey") for h in env.hosts)


async def test_rollback_opens_incident_and_assesses_every_host(
    bot: Bot, ssh_env: SshEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    resp, name = await bot.command(START)
    ack_seconds = time.monotonic() - started
    assert resp.status == 200
    assert ack_seconds < 3, "Slack's 3-second deadline"
    assert "Checking `myapp` v1.4.2" in resp.text

    reply = await bot.reply(name)
    incident = await bot.incident()
    assert f"Incident `{incident.id}` opened" in reply
    assert "https://fake.slack.com/archives/C0INCIDENT" in reply

    decision = await bot.gate("Roll back")
    parent = await bot.parent_shows("web1", "web2", "on v1.5.0")
    for expected in (
        "myapp",
        "staging",
        "v1.4.2",
        "<@U0CAROL>",
        "checkout returns 500",
        "Assess the situation",
        "Roll back code",
        "Verify rollback",
        "Monitor",
    ):
        assert expected in parent, expected

    # each host's output of the version command, under its name and the step's
    await bot.said(
        "`web1` · Assess the situation",
        "`web2` · Assess the situation",
        "Deployed now: `v1.5.0`",
        "Last good version: `v1.4.2`",
    )
    labels = [b.text for b in bot.slack.buttons(decision)]
    assert any("Roll back" in label for label in labels)
    assert any("Fix forward" in label for label in labels)

    notices = bot.slack.messages("C0STAKEHOLDERS")
    assert len(notices) == 1
    assert "https://fake.slack.com/archives/C0INCIDENT" in bot.slack.all_text(notices[0])
    assert ssh_logins(ssh_env) >= 2  # assess really went to both hosts
    bot.slack.assert_no_errors()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "xoxb-test" not in logged and "test-signing-secret" not in logged
    assert len(caplog.records) > 10  # the logs were really captured


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("nosuchapp v1.4.2 broken", "U0CAROL", "Known apps: `myapp`"),
        ("myapp v1.4.2;reboot broken", "U0CAROL", "is not a version"),
        ("myapp v" + "1" * 120 + " broken", "U0CAROL", "may be longer than 100"),
        ("myapp " + "v" * 5000, "U0CAROL", "is 5,000 characters long"),
        ("myapp v1.4.2 " + "checkout down " * 80, "U0CAROL", "keep it to 1,000"),
        ("myapp v1.4.2", "U0CAROL", "What broke?"),
    ],
)
async def test_bad_input_is_refused_at_once_and_nothing_runs(
    bot: Bot, ssh_env: SshEnv, text: str, user: str, expected: str
) -> None:
    resp, _ = await bot.command(text, user=user)
    assert resp.status == 200
    assert expected in resp.text
    assert not bot.slack.messages(INCIDENT_CHANNEL)
    assert ssh_logins(ssh_env) == 0


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("myapp v9.9.9 broken", "U0CAROL", "neither a tag nor a commit"),
        (START, "U0MALLORY", "is not an operator or approver"),
    ],
)
async def test_refusals_after_the_ack_come_through_response_url(
    bot: Bot, ssh_env: SshEnv, text: str, user: str, expected: str
) -> None:
    resp, name = await bot.command(text, user=user)
    assert resp.status == 200
    assert expected in await bot.reply(name)
    assert not bot.slack.messages(INCIDENT_CHANNEL)
    assert ssh_logins(ssh_env) == 0


async def test_a_user_group_member_may_start(bot: Bot, make_bot: Any, ssh_env: SshEnv) -> None:
    # U0DAVE is only in S0ONCALL (see conftest); the app lists the group, not the user.
    cfg = ssh_env.app_config()
    cfg["operators"] = ["S0ONCALL"]
    async with make_bot({"myapp": cfg}) as grouped:
        _, name = await grouped.command(START, user="U0DAVE")
        assert "opened" in await grouped.reply(name)


async def test_second_rollback_for_the_same_app_names_the_holder(bot: Bot) -> None:
    _, first = await bot.command(START)
    assert "opened" in await bot.reply(first)
    await bot.gate("Roll back")
    incident = await bot.incident()
    _, second = await bot.command(START, user="U0ALICE")
    reply = await bot.reply(second)
    assert f"open incident `{incident.id}`" in reply
    assert "<@U0CAROL>" in reply
    assert "fake.slack.com/archives/C0INCIDENT" in reply
    assert len(bot.slack.messages(INCIDENT_CHANNEL, top_level=True)) == 1


@pytest.mark.parametrize("problem", ["bad signature", "stale timestamp"])
async def test_unsigned_or_stale_requests_get_401(bot: Bot, ssh_env: SshEnv, problem: str) -> None:
    from tests.slack_fake import send_command

    secret, ts = (
        ("wrong-secret", None)
        if problem == "bad signature"
        else ("test-signing-secret", int(time.time()) - 10 * 60)
    )
    resp = await send_command(bot.session, bot.events_url, secret, text=START, timestamp=ts)
    assert resp.status == 401
    assert not bot.slack.messages(INCIDENT_CHANNEL)
    assert ssh_logins(ssh_env) == 0


async def test_unreachable_host_is_reported_per_host_and_the_bot_stays_up(
    make_bot: Any, ssh_env: SshEnv, tmp_path: Path
) -> None:
    cfg = ssh_env.app_config()
    cfg["hosts"][1]["port"] = 1  # nothing listens there: connection refused
    wrong = tmp_path / "known_hosts_wrong"
    lines = ssh_env.known_hosts.read_text().splitlines()
    other_key = ssh_env.hosts[1].host_key_line
    wrong.write_text("\n".join([lines[0].split()[0] + " " + other_key, *lines[1:]]) + "\n")
    cfg["ssh"]["known_hosts"] = str(wrong)  # web1's key now mismatches
    async with make_bot({"myapp": cfg}) as b:
        _, name = await b.command(START)
        assert "opened" in await b.reply(name)
        failure = await b.gate("Retry")
        text = b.slack.all_text(failure)
        assert "web1" in text and "web2" in text
        assert "does not match known_hosts" in b.thread_text() + b.slack.all_text(b.parent())
        assert "refused" in b.thread_text() + b.slack.all_text(b.parent())
        assert any("Abort" in btn.text for btn in b.slack.buttons(failure))
        async with b.session.get(f"{b.url}/healthz") as resp:
            assert resp.status == 200
        assert (await b.incident()).status.value == "paused"
    assert not ssh_env.hosts[0].commands()  # the changed host key: refused before any command


def test_a_bad_apps_file_stops_serve_with_file_key_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "apps.yaml"
    bad.write_text(
        "apps:\n  myapp:\n    repo: x\n    incident_channel: C1\n    hosts: []\n"
        "    deploy: {workdir: /srv}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={
            "REWIND_CONFIG": str(bad),
            "SLACK_BOT_TOKEN": "xoxb-x",
            "PATH": "/usr/bin:/bin",
            "SLACK_SIGNING_SECRET": "s",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert str(bad) in proc.stderr
    assert "apps.myapp.hosts" in proc.stderr
    assert "Traceback" not in proc.stderr
    # Every problem, one per line, in one pass: the production app's missing approvers and
    # known_hosts, the empty host list and the missing service.
    lines = proc.stderr.splitlines()
    assert lines[0] == "rewind: bad apps file: 4 problems:", lines
    assert [line.startswith("  - ") for line in lines[1:]] == [True] * 4, lines
    assert "apps.yaml:6: apps.myapp.deploy.service: strategy 'systemd' needs 'service'" in lines[4]


async def test_an_incident_channel_the_bot_cannot_post_in_starts_nothing(
    bot: Bot, ssh_env: SshEnv
) -> None:
    bot.slack.fail_next("chat.postMessage", ok_false="not_in_channel")
    resp, name = await bot.command(START)
    assert resp.status == 200
    reply = await bot.reply(name)
    assert "could not post in <#C0INCIDENT>" in reply and "Nothing was started" in reply
    assert ssh_logins(ssh_env) == 0
    _, again = await bot.command(START)  # the app is not left locked
    assert "opened" in await bot.reply(again)
