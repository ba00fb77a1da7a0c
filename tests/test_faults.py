"""Faults of the parts around Rewind, with real processes: each ends in a clear, recoverable
state with a complete audit trail. (A worker killed mid-step: tests/test_worker_crash.py;
Redis lost: tests/test_redis_loss.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import redis

from bot.sample.hosts import libpq_url
from tests.fixtures_hosts import SshEnv
from tests.harness import INCIDENT_CHANNEL, SECRET, settings_env, write_apps
from tests.processes import Serve, Workers
from tests.slack_fake import SlackFake, send_command
from tests.socket_mode_fake import SocketModeFake
from tests.test_workflow_e2e import config, db_revision, start

START = "myapp v1.4.2 checkout returns 500"


async def test_web_killed_between_the_ack_and_the_work_loses_no_command(
    slack: SlackFake, redis_url: str, ssh_env: SshEnv, tmp_path: Path, serve_factory: Any
) -> None:
    cfg = ssh_env.app_config()
    cfg["operators"] = ["S0ONCALL", "U0CAROL"]  # a group: the work after the ack asks Slack
    config = write_apps(tmp_path / "apps.yaml", {"myapp": cfg}, tmp_path / "incidents")
    serve = serve_factory(settings_env(slack, redis_url, config, tmp_path / "ws"), "--with-worker")
    await serve.start()
    # The work after the ack hangs on Slack: the process is killed right there.
    slack.slow("usergroups.users.list", 120, times=1)
    async with aiohttp.ClientSession() as session:
        url = slack.response_url("start")
        resp = await send_command(
            session, f"{serve.url}/slack/events", SECRET, text=START, response_url=url
        )
        assert resp.status == 200 and "Checking" in resp.text
        await slack.wait_until(
            lambda: slack.calls_to("usergroups.users.list"), timeout=30, what="the work started"
        )
        serve.kill()
        assert not slack.calls_to("response_url") and not slack.messages(INCIDENT_CHANNEL)

        await serve.start()
        await carried_out_once(slack, serve, redis_url)


async def test_socket_mode_web_killed_between_the_ack_and_the_work_loses_no_command(
    slack: SlackFake, redis_url: str, ssh_env: SshEnv, tmp_path: Path, serve_factory: Any
) -> None:
    """The same over Socket Mode: the next `serve` carries the command out, once."""
    cfg = ssh_env.app_config()
    cfg["operators"] = ["S0ONCALL", "U0CAROL"]
    config = write_apps(tmp_path / "apps.yaml", {"myapp": cfg}, tmp_path / "incidents")
    env = settings_env(slack, redis_url, config, tmp_path / "ws")
    del env["SLACK_SIGNING_SECRET"]  # Socket Mode needs none
    env["SLACK_APP_TOKEN"] = "xapp-1-faults-0123456789"
    async with SocketModeFake(slack) as sm:
        serve = serve_factory(env, "--with-worker")
        await serve.start()
        slack.slow("usergroups.users.list", 120, times=1)
        envelope = await sm.command(START, user_id="U0CAROL", response_url=slack.response_url("s"))
        assert "Checking" in sm.ack_text(envelope)
        await slack.wait_until(
            lambda: slack.calls_to("usergroups.users.list"), timeout=30, what="the work started"
        )
        serve.kill()
        assert not slack.calls_to("response_url") and not slack.messages(INCIDENT_CHANNEL)

        await serve.start()
        await carried_out_once(slack, serve, redis_url)
        assert not sm.stray


async def carried_out_once(slack: SlackFake, serve: Serve, redis_url: str) -> None:
    """The command the killed `serve` acked: answered once, by the next one, one incident."""
    call = await slack.wait_for(lambda c: c.method == "response_url", timeout=60)
    text = str(call.args.get("text", ""))
    assert "opened for `myapp`" in text and "restarted" in text, text
    await slack.wait_until(
        lambda: any(
            "Roll back" in b.text
            for m in slack.messages(INCIDENT_CHANNEL)
            for b in slack.buttons(m)
        ),
        timeout=60,
        what="the decision buttons",
    )
    assert len(slack.calls_to("response_url")) == 1  # carried out once, answered once
    assert len(slack.messages(INCIDENT_CHANNEL, top_level=True)) == 1
    assert "carrying out a command acked by a process that stopped" in serve.log_text()
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with contextlib.closing(r):
        (incident_id,) = r.smembers("rewind:open")
        audit = [fields["what"] for _, fields in r.xrange(f"rewind:audit:{incident_id}")]
        assert audit[0] == "opened" and "step succeeded: Assess the situation" in audit
        assert not r.hlen("rewind:commands")  # nothing left pending


async def test_slack_down_then_rate_limiting_delays_messages_in_order_none_twice(
    make_bot: Any, ssh_env: SshEnv
) -> None:
    async with make_bot({"myapp": ssh_env.app_config()}) as bot:
        slack: SlackFake = bot.slack
        _, name = await bot.command(START)
        # Slack fails as soon as the thread has its first reply, while the steps talk.
        await slack.wait_until(
            lambda: len(slack.messages(INCIDENT_CHANNEL)) >= 2, timeout=30, what="a reply"
        )
        # 6 s of HTTP 500 on every Web API call, then 10 s of 429 (Retry-After: 2): twice the
        # longest pause between two tries (the notifier's 5 s backoff), so that a message held
        # up by the 500s meets the rate limiting too.
        slack.fail_next("*", status=500, times=1_000_000)
        await asyncio.sleep(6)
        slack.clear_faults()
        slack.fail_next("*", status=429, retry_after=2, times=1_000_000)
        await asyncio.sleep(10)
        failed = [c for c in slack.calls if c.status in (429, 500)]
        slack.clear_faults()
        assert "opened" in await bot.reply(name)
        await bot.gate("Roll back", timeout=90)
        await bot.runtime.notifier.flush(await bot.incident())

    assert {c.status for c in failed} == {429, 500}
    assert any(c.method == "chat.postMessage" for c in failed)  # replies were held up

    def said(channel: str, replies: bool) -> list[str]:
        return list(
            dict.fromkeys(
                str(c.args.get("text"))
                for c in slack.calls
                if c.method == "chat.postMessage"
                and c.args.get("channel") == channel
                and bool(c.args.get("thread_ts")) == replies
            )
        )

    (parent,) = slack.messages(INCIDENT_CHANNEL, top_level=True)
    replies = [str(m["text"]) for m in slack.thread(INCIDENT_CHANNEL, str(parent["ts"]))]
    assert replies == said(INCIDENT_CHANNEL, True)  # every reply, in order, none twice
    notices = [str(m["text"]) for m in slack.messages("C0STAKEHOLDERS")]
    assert notices == said("C0STAKEHOLDERS", False)
    assert len(replies) >= 3 and len(notices) == 1
    assert "waiting for the decision" in str(parent["text"])  # the parent caught up
    assert bot.runtime.notifier.failures == 0


async def test_a_database_that_refuses_the_downgrade_pauses_and_offers_a_restore(
    make_bot: Any, ssh_env_migrated: SshEnv
) -> None:
    env = ssh_env_migrated
    assert env.db_url is not None
    # A view that needs the table the downgrade drops: PostgreSQL itself refuses the DROP.
    with psycopg.connect(libpq_url(env.db_url), autocommit=True) as conn:
        conn.execute("CREATE VIEW coupon_codes AS SELECT * FROM coupons")
    async with make_bot({"myapp": config(env)}) as bot:
        await start(bot)
        await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
        approval = await bot.gate("Approve downgrade", timeout=90)
        await bot.click(approval, "Approve downgrade", "U0ALICE")
        failure = await bot.gate("Retry", timeout=90)
        text = bot.slack.all_text(failure) + bot.thread_text()
        assert "depend" in text and "web1" in text  # PostgreSQL's own words, and where
        labels = [b.text for b in bot.slack.buttons(failure)]
        assert any("estore" in label for label in labels), labels
        incident = await bot.incident()
        assert incident.status.value == "paused"
        assert db_revision(env.db_url) == "d4e5f6a1b2c3"  # nothing half-done
        timeline = [e["what"] for e in await bot.runtime.store.timeline(incident.id)]
        assert "step failed: Roll back database" in timeline
        await bot.click(failure, "Abort", "U0CAROL")
        incident = await bot.wait_status("aborted")
        assert timeline[0] == "opened" and "answered abort" in [
            e["what"] for e in await bot.runtime.store.timeline(incident.id)
        ]


async def test_two_workers_racing_for_a_step_after_a_partition_heals_fencing_lets_one_win(
    make_bot: Any, ssh_env: SshEnv, tmp_path: Path
) -> None:
    cfg = config(ssh_env)
    cfg["monitor"] = {"duration": "8s", "interval": "0.5s", "summary_every": "2s"}
    async with make_bot({"myapp": cfg}, with_worker=False) as bot:
        workers = Workers(bot, tmp_path)
        try:
            workers.spawn("worker-A")
            await start(bot)
            await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
            await bot.wait_step("monitor")
            # A is cut off (frozen: no heartbeat, no writes); B takes the step over.
            workers.procs["worker-A"].send_signal(signal.SIGSTOP)
            frozen_run = (await bot.incident()).step("monitor").run_id
            workers.spawn("worker-B")

            async def taken_over() -> bool:
                inc = await bot.incident()
                return bool(inc.step("monitor").worker == "worker-B")

            deadline = asyncio.get_running_loop().time() + 60
            while not await taken_over():
                assert asyncio.get_running_loop().time() < deadline, "B never took over"
                await asyncio.sleep(0.2)
            # The partition heals: A wakes up mid-step, still believing the step is its own.
            workers.procs["worker-A"].send_signal(signal.SIGCONT)
            incident = await bot.wait_status("completed", timeout=120)
        finally:
            workers.procs["worker-A"].send_signal(signal.SIGCONT)
            # Off the event loop: a worker finishing the incident still talks to the Slack fake.
            await asyncio.to_thread(workers.stop_all)
    # B took the step over while A was frozen. Usually B finishes it; on an overloaded machine B
    # may in turn miss its heartbeats and A take the step back with a new run of its own. Either
    # way one run wins, and A's run from before the freeze is fenced off (its log, below).
    assert incident.step("monitor").worker in {"worker-A", "worker-B"}
    assert incident.step("monitor").run_id != frozen_run
    timeline = [e["what"] for e in await bot.runtime.store.timeline(incident.id)]
    assert timeline.count("step succeeded: Monitor") == 1, timeline
    assert timeline.count("finished") <= 1
    assert "resumed" in bot.thread_text()
    a_log = (tmp_path / "worker-A.log").read_text()
    assert "another run took over" in a_log or "dropped" in a_log, a_log[-2000:]
