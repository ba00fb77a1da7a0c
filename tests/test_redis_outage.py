"""Redis that goes away mid-incident: a 10 s outage, restarts at three steps, a Sentinel failover.

Each test has its own `redis-server` processes (tests/redis_servers.py), run as an operator
would: `appendonly yes`. The bot's web process runs in the test, workers as real processes
where it matters; Slack is the local fake, driven with signed requests.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.fronts.slack.listeners import STORE_AWAY
from bot.store.connection import Outage, connect
from bot.store.memory import MemoryStore
from bot.store.redis_store import RedisStore
from bot.workflow.machine import new_steps
from bot.workflow.model import Incident, Status
from tests.fixtures_hosts import SshEnv
from tests.harness import Bot, running_bot, settings_env, write_apps
from tests.processes import Workers
from tests.redis_servers import RedisServer, SentinelSet
from tests.slack_fake import SlackFake
from tests.test_worker_crash import approve_rollback, counting_app, runs
from tests.test_workflow_e2e import START, config, db_revision, start

AWAY_SAID = re.compile(r"could not reach its store \(Redis\) for (under a second|(\d+) s)")


def bot_on(
    slack: SlackFake, redis_url: str, tmp_path: Path, app: dict[str, Any], *, with_worker: bool
) -> Any:
    cfg = write_apps(tmp_path / "apps.yaml", {"myapp": app}, tmp_path / "incidents")
    env = settings_env(slack, redis_url, cfg, tmp_path / "workspace")
    return running_bot(slack, env, with_worker=with_worker)


async def test_a_ten_second_outage_gets_plain_answers_and_the_incident_goes_on(
    ssh_env: SshEnv, slack: SlackFake, own_redis: RedisServer, tmp_path: Path
) -> None:
    async with bot_on(slack, own_redis.url(), tmp_path, config(ssh_env), with_worker=True) as bot:
        await start(bot)
        decision = await bot.gate("Roll back")
        loop = asyncio.get_running_loop()
        own_redis.stop()
        down_at = loop.time()

        # A new command: refused in the ack itself, in plain words; nothing starts later.
        resp, name = await bot.command(START)
        assert resp.status == 200 and STORE_AWAY in resp.text, resp.text
        status, _ = await bot.command("status myapp")
        assert "cannot reach its store" in status.text and "nothing was changed" in status.text
        # A click: answered through its response_url, the same words.
        _, clicked = await bot.click(decision, "Roll back", "U0CAROL")
        assert STORE_AWAY in await bot.reply(clicked, timeout=10)
        async with bot.session.get(f"{bot.url}/healthz") as health:
            assert health.status == 503

        await asyncio.sleep(max(0.0, down_at + 10 - loop.time()))  # the outage lasts 10 s
        own_redis.start()

        incident = await bot.incident()
        assert incident.gate is not None and incident.gate.kind.value == "decision"  # unchanged
        await bot.click(decision, "Roll back", "U0CAROL")
        incident = await bot.wait_status("completed", timeout=120)
        said = AWAY_SAID.findall(bot.thread_text())
        assert len(said) == 1 and int(said[0][1]) >= 10, bot.thread_text()[-1500:]
        assert len(await bot.runtime.store.recent_incidents()) == 1  # the refused one never ran
        timeline = await bot.runtime.store.timeline(incident.id)
        assert any(e["what"] == "store unreachable" for e in timeline)
        assert not [c for c in slack.calls if c.method == "response_url" and c.args.get("name")
                    == name]  # fmt: skip


@pytest.mark.timeout(300)
async def test_redis_restarted_at_three_steps_the_incident_completes_one_downgrade(
    ssh_env_migrated: SshEnv,
    slack: SlackFake,
    own_redis: RedisServer,
    tmp_path: Path,
    workers_factory: Callable[[Bot], Workers],
) -> None:
    env = ssh_env_migrated
    cfg, count = counting_app(env, tmp_path, monitor="4s")
    async with bot_on(slack, own_redis.url(), tmp_path, cfg, with_worker=False) as bot:
        workers = workers_factory(bot)
        workers.spawn("worker-A")
        workers.spawn("worker-B")
        await start(bot)
        await bot.wait_step("assess")
        await asyncio.to_thread(own_redis.restart)  # 1: while a step runs on a worker

        await bot.click(await bot.gate("Roll back", timeout=90), "Roll back", "U0CAROL")
        approval = await bot.gate("Approve downgrade", timeout=90)
        await asyncio.to_thread(own_redis.restart)  # 2: while the downgrade waits for its approval
        await bot.click(approval, "Approve downgrade", "U0ALICE")

        await bot.wait_step("monitor")
        await asyncio.to_thread(own_redis.restart)  # 3: while monitoring

        incident = await bot.wait_status("completed", timeout=180)
        assert runs(count) == 1  # the database downgrade ran exactly once
        assert env.db_url and db_revision(env.db_url) == "b2c3d4e5f6a1"
        # Thread messages are queued off the steps' path: the last notice may land just after.
        await bot.slack.wait_until(
            lambda: len(AWAY_SAID.findall(bot.thread_text())) >= 3, timeout=30, what="3 notices"
        )
        assert len(AWAY_SAID.findall(bot.thread_text())) == 3, bot.thread_text()[-2000:]
        assert incident.step("db_rollback").attempts == 1


@pytest.mark.timeout(60)
async def test_a_restart_between_two_calls_is_seen_once(own_redis: RedisServer) -> None:
    """Redis restarted while no call was under way: redis-py reconnects the connection the
    server closed without a retry, so no call fails. The new server's run id still opens and
    closes the outage, once; a new connection to the same server is no outage."""
    outage = Outage()
    seen: list[float] = []
    outage.listeners.append(lambda since, seconds: seen.append(seconds))
    client = connect(own_redis.url(), outage=outage)
    try:
        assert await client.ping()
        await asyncio.to_thread(own_redis.restart)
        assert await client.ping()
        assert await client.ping()
        assert len(seen) == 1 and seen[0] < 1, seen
        await client.connection_pool.disconnect()  # a new connection, the same server
        assert await client.ping()
        assert len(seen) == 1, seen
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_an_incident_that_ends_frees_its_app_in_the_same_write(
    redis_url: str, kind: str
) -> None:
    """Ended and unlocked are one write: a reader (the next /rollback, a plan, the failover test
    below) never sees an incident ended while it still holds the app, whatever comes between
    that write and the engine's own release (a WAIT for a replica gone in a failover, Slack)."""
    store: RedisStore | MemoryStore = (
        RedisStore(connect(redis_url)) if kind == "redis" else MemoryStore()
    )
    token = await store.acquire_lock("myapp", "b33a8d")
    assert isinstance(token, int)
    ended = Incident(id="b33a8d", app="myapp", environment="staging", requested_version="v1",
                     requested_by="U0CAROL", steps=new_steps(), lock_token=token)  # fmt: skip
    await store.create(ended)
    await store.acquire_lock("other", "0th3r1")
    assert await store.lock_holder("myapp") == "b33a8d"  # open: it keeps the app

    def complete(current: Incident) -> Incident:
        current.status = Status.COMPLETED
        return current

    await store.update(ended.id, complete)
    assert await store.lock_holder("myapp") is None
    assert await store.lock_holder("other") == "0th3r1"  # another app's lock is not touched
    nxt = await store.acquire_lock("myapp", "n3xt00")
    assert isinstance(nxt, int) and nxt > token
    await store.update(ended.id, complete)  # a late write of the ended one (a stale step result)
    assert await store.lock_holder("myapp") == "n3xt00"  # leaves the next incident's lock
    if isinstance(store, RedisStore):
        await store.r.aclose()


@pytest.fixture
async def sentinel_bot(
    sentinel_set: SentinelSet, ssh_env_migrated: SshEnv, slack: SlackFake, tmp_path: Path
) -> AsyncIterator[tuple[Bot, SentinelSet, Path]]:
    cfg, count = counting_app(ssh_env_migrated, tmp_path, monitor="4s")
    async with bot_on(slack, sentinel_set.url(), tmp_path, cfg, with_worker=True) as bot:
        yield bot, sentinel_set, count


@pytest.mark.timeout(300)
async def test_sentinel_failover_mid_incident_completes_on_the_promoted_replica(
    sentinel_bot: tuple[Bot, SentinelSet, Path], ssh_env_migrated: SshEnv
) -> None:
    bot, group, count = sentinel_bot
    await approve_rollback(bot, decision_timeout=90)
    await bot.wait_step("redeploy")
    group.primary.stop(signal.SIGKILL)  # the primary dies mid-step
    await asyncio.to_thread(group.wait_failover)

    incident = await bot.wait_status("completed", timeout=180)
    assert group.master_port() == group.replica.port
    assert runs(count) == 1
    assert ssh_env_migrated.db_url and db_revision(ssh_env_migrated.db_url) == "b2c3d4e5f6a1"
    # The lock and its fencing token came through the failover: released with the write that
    # ended the incident (so already free here), and the next incident gets a larger token.
    assert await bot.runtime.store.lock_holder("myapp") is None
    token = await bot.runtime.store.acquire_lock("myapp", "n3xt00")
    assert isinstance(token, int) and token > incident.lock_token
    assert AWAY_SAID.search(bot.thread_text()), bot.thread_text()[-1500:]
    assert incident.step("redeploy").status.value == "succeeded"
