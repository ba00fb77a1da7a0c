"""The whole runbook through Slack: buttons as signed block_actions, real hosts, real database."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.sample.hosts import libpq_url
from tests.fakes import with_step_commands
from tests.fixtures_hosts import SshEnv
from tests.harness import INCIDENT_CHANNEL, Bot

START = "myapp v1.4.2 checkout returns 500"


def config(env: SshEnv, **extra: Any) -> dict[str, Any]:
    cfg = with_step_commands(env.app_config())
    cfg["monitor"] = {"duration": "2s", "interval": "0.5s", "summary_every": "1s"}
    cfg["verify"] = {"health_timeout": "20s", "health_interval": "0.3s"}
    cfg.update(extra)
    return cfg


def db_revision(db_url: str) -> str:
    with psycopg.connect(libpq_url(db_url)) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(row[0]) if row else ""


def origin_branches(env: SshEnv) -> str:
    assert env.repo is not None
    return subprocess.run(
        ["git", "--git-dir", str(env.repo.origin), "branch", "--list", "hotfix/*"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


async def start(bot: Bot, user: str = "U0CAROL") -> None:
    _, name = await bot.command(START, user=user)
    assert "opened" in await bot.reply(name)


async def freeze(bot: Bot) -> tuple[int, dict[str, Any]]:
    async with bot.session.get(f"{bot.url}/api/freeze/myapp") as resp:
        return resp.status, await resp.json()


async def test_full_rollback_with_database_approval(
    make_bot: Any, ssh_env_migrated: SshEnv, tmp_path: Path
) -> None:
    env = ssh_env_migrated
    assert env.db_url and db_revision(env.db_url) == "d4e5f6a1b2c3"
    async with make_bot({"myapp": config(env)}) as bot:
        await start(bot)
        decision = await bot.gate("Roll back")
        decision_text = bot.slack.all_text(decision)
        assert "*Migrations to undo:* 2" in decision_text
        await bot.click(decision, "Roll back", "U0CAROL")

        approval = await bot.gate("Approve downgrade", timeout=90)
        text = bot.slack.all_text(approval)
        assert "myapp-" in text and ".sql" in text  # the backup it took, named by incident
        assert "coupon" in text.lower()  # the downgrade SQL preview
        await bot.click(approval, "Approve downgrade", "U0ALICE")

        incident = await bot.wait_status("completed", timeout=120)
        assert db_revision(env.db_url) == "b2c3d4e5f6a1"
        for host in env.hosts:
            assert host.run("git rev-parse HEAD").strip() == incident.facts.code.hotfix_sha
            assert host.health_status() == 200
            assert host.run("cat VERSION").strip() == "1.4.2"
        for host in env.hosts:  # one SSH connection per host for the whole incident
            assert host.sshd_log.read_text().count("Accepted publickey") == 1, host.name
        branch = f"hotfix/rollback-myapp-v1.4.2-{incident.id}"
        assert branch in origin_branches(env)

        # The parent's last update goes out after the thread's queued lines (one a second).
        parent = await bot.parent_shows("All completion criteria are met", timeout=60)
        assert "Roll back database" in parent and "Monitor" in parent
        notices = [bot.slack.all_text(m) for m in bot.slack.messages("C0STAKEHOLDERS")]
        assert len(notices) == 2 and "Recovered" in notices[1]
        report = Path(incident.facts.report.path)
        assert report.exists() and "What failed" in report.read_text()
        # Read in git, not in Slack: people by the names Slack gives them (users.info).
        assert "chosen by @u0carol" in report.read_text() and "<@" not in report.read_text()
        assert "- @u0alice approved the database downgrade" in report.read_text()
        assert any(f.filename.endswith(".md") for f in bot.slack.files)
        timeline = await bot.runtime.store.timeline(incident.id)
        assert any(e["who"] == "U0ALICE" and "approve" in e["what"] for e in timeline)

        status, body = await freeze(bot)
        assert status == 423 and body["incident"] == incident.id
        _, refused = await bot.command("unfreeze myapp", user="U0CAROL")
        assert "Only an approver" in await bot.reply(refused)
        _, lifted = await bot.command("unfreeze myapp", user="U0ALICE")
        assert "unfrozen" in await bot.reply(lifted)
        assert (await freeze(bot))[0] == 200
        bot.slack.assert_no_errors()


async def test_production_four_eyes_unauthorized_and_double_click(
    make_bot: Any, ssh_env: SshEnv
) -> None:
    async with make_bot({"myapp": config(ssh_env, environment="production")}) as bot:
        await start(bot, user="U0ALICE")
        decision = await bot.gate("Roll back")
        _, name = await bot.click(decision, "Roll back", "U0MALLORY")
        assert "not an operator or approver" in await bot.reply(name)
        assert (await bot.incident()).status.value == "waiting"
        await bot.click(decision, "Roll back", "U0ALICE")

        approval = await bot.gate("Approve")
        _, own = await bot.click(approval, "Approve", "U0ALICE")
        assert "four-eyes" in await bot.reply(own)
        assert (await bot.incident()).gate.kind.value == "approve_start"

        first, second = await asyncio.gather(
            bot.click(approval, "Approve", "U0BOB"), bot.click(approval, "Approve", "U0BOB")
        )
        assert first[0].status == 200 and second[0].status == 200
        incident = await bot.wait_status("completed", timeout=120)
        timeline = await bot.runtime.store.timeline(incident.id)
        approvals = [e for e in timeline if e["what"] == "answered approve"]
        assert len(approvals) == 1 and approvals[0]["who"] == "U0BOB"
        assert [a.user for a in incident.approvals] == ["U0BOB"]


async def test_fix_forward_closes_the_rollback_and_keeps_thread_and_report(
    bot: Bot, ssh_env: SshEnv
) -> None:
    await start(bot)
    await bot.gate("Fix forward")
    # `/rollback status ID` carries the open question's buttons: they work from there too.
    waiting = await bot.incident()
    _, name = await bot.command(f"status {waiting.id}", channel_id="C0RANDOM")
    await bot.reply(name)
    answer = bot.slack.calls_to("response_url")[-1].args
    ephemeral = {"ts": bot.parent()["ts"], "blocks": answer["blocks"], "text": answer["text"]}
    await bot.click(ephemeral, "Fix forward", "U0CAROL")
    incident = await bot.wait_status("fixed_forward")
    assert "fix forward" in incident.outcome.lower()
    for host in ssh_env.hosts:
        assert host.run("git describe --tags").strip() == "v1.5.0"
    assert origin_branches(ssh_env) == ""
    assert (await freeze(bot))[0] == 200
    await bot.slack.wait_until(lambda: len(bot.slack.messages("C0STAKEHOLDERS")) == 2)
    assert "Fix forward" in bot.thread_text()


@pytest.mark.parametrize("pause", ["decision", "approve_start", "retry"])
async def test_abort_at_each_pause_says_what_was_rolled_back(
    make_bot: Any, ssh_env: SshEnv, pause: str
) -> None:
    env = ssh_env
    cfg = config(env, environment="production" if pause == "approve_start" else "staging")
    if pause == "retry":
        cfg["hosts"][1]["port"] = 1
    async with make_bot({"myapp": cfg}) as bot:
        await start(bot)
        if pause == "approve_start":
            await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
            gate = await bot.gate("Approve")
        elif pause == "retry":
            gate = await bot.gate("Retry")
        else:
            gate = await bot.gate("Roll back")
        await bot.click(gate, "Abort", "U0CAROL")
        incident = await bot.wait_status("aborted")
        assert incident.ended_by == "U0CAROL"
        assert "Rolled back: nothing" in incident.outcome
        await bot.slack.wait_until(
            lambda: "Aborted by <@U0CAROL>. Rolled back: nothing" in bot.thread_text()
        )
        await bot.slack.wait_until(lambda: any(f.filename.endswith(".md") for f in bot.slack.files))
        for _ in range(50):  # the path is saved just after the upload
            if report := (await bot.incident()).facts.report.path:
                break
            await asyncio.sleep(0.1)
        assert "| Status | aborted |" in Path(report).read_text()  # the runbook's report, always
        for host in env.hosts[:1]:
            assert host.run("git describe --tags").strip() == "v1.5.0"
        _, again = await bot.command(START)
        assert "opened" in await bot.reply(again)  # the app lock was released


async def test_abort_at_the_database_approval(make_bot: Any, ssh_env_migrated: SshEnv) -> None:
    env = ssh_env_migrated
    async with make_bot({"myapp": config(env)}) as bot:
        await start(bot)
        await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
        await bot.click(await bot.gate("Approve downgrade", timeout=90), "Abort", "U0ALICE")
        incident = await bot.wait_status("aborted")
        assert "Not done:" in incident.outcome and "Roll back database" in incident.outcome
        assert env.db_url and db_revision(env.db_url) == "d4e5f6a1b2c3"  # untouched
        assert incident.facts.db.backup and incident.facts.db.backup.path  # the backup stays


async def test_a_slack_retry_of_the_same_command_changes_nothing(bot: Bot) -> None:
    from tests.slack_fake import send_command

    url = bot.slack.response_url("retried")
    args = {"text": START, "user_id": "U0CAROL", "trigger_id": "123.456.abc", "response_url": url}
    first = await send_command(bot.session, bot.events_url, "test-signing-secret", **args)
    retry = await send_command(
        bot.session, bot.events_url, "test-signing-secret", **args,
        headers_extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )  # fmt: skip
    assert first.status == 200 and retry.status == 200
    await bot.gate("Roll back")
    await asyncio.sleep(1)
    assert len(bot.slack.messages(INCIDENT_CHANNEL, top_level=True)) == 1
    assert len(await bot.runtime.store.recent_incidents(10)) == 1


async def test_two_concurrent_rollbacks_for_one_app_open_one_incident(bot: Bot) -> None:
    (_, a), (_, b) = await asyncio.gather(
        bot.command(START, user="U0CAROL"), bot.command(START, user="U0ALICE")
    )
    replies = sorted([await bot.reply(a), await bot.reply(b)], key=lambda r: "opened" in r)
    assert "already has an open incident" in replies[0]
    assert "opened" in replies[1]
    assert len(await bot.runtime.store.recent_incidents(10)) == 1


async def test_status_list_and_cancel_from_any_channel(bot: Bot) -> None:
    await start(bot)
    await bot.gate("Roll back")
    incident = await bot.incident()
    _, listed = await bot.command("list", channel_id="C0RANDOM")
    assert incident.id in await bot.reply(listed)
    _, status = await bot.command("status myapp", channel_id="C0RANDOM")
    assert "waiting" in (await bot.reply(status)).lower()
    _, denied = await bot.command(f"cancel {incident.id}", user="U0MALLORY")
    assert "not an operator" in await bot.reply(denied)
    _, cancelled = await bot.command(f"cancel {incident.id}", user="U0CAROL")
    assert "cancelled" in await bot.reply(cancelled)
    assert (await bot.incident()).status.value == "cancelled"
    _, stale = await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
    assert "already cancelled" in await bot.reply(stale)


async def test_choosing_the_tag_and_a_major_outage_with_version_omitted(
    bot: Bot, ssh_env: SshEnv
) -> None:
    _, name = await bot.command("myapp --major checkout returns 500")
    assert "opened" in await bot.reply(name)
    decision = await bot.gate("Roll back")
    await bot.said("Last good version: `v1.4.2`")  # the tag before v1.5.0
    labels = [b.text for b in bot.slack.buttons(decision)]
    assert any("revert merges" in label for label in labels)
    assert any("take the tag" in label for label in labels)
    await bot.click(decision, "take the tag", "U0CAROL")
    incident = await bot.wait_status("completed", timeout=120)
    assert ssh_env.repo is not None
    tag_commit = ssh_env.repo.tags["v1.4.2"]
    assert incident.facts.code_method == "tag"
    assert incident.facts.code.hotfix_sha == tag_commit
    for host in ssh_env.hosts:
        assert host.run("git rev-parse HEAD").strip() == tag_commit
    assert Path(incident.facts.report.postmortem_path).exists()
