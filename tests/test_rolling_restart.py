"""Rewind's own deploys: SIGTERM to a worker mid-step, and a rolling restart of every process
(serve twice, one with a click in flight; each worker, one of them mid-downgrade).

Real processes (`python -m bot serve`, `python -m bot worker`), real SSH hosts and database;
Slack is the local fake, driven with signed requests as Slack sends them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest

from bot.store.connection import connect
from bot.store.redis_store import RedisStore
from tests.fixtures_hosts import SshEnv
from tests.harness import Bot, settings_env, write_apps
from tests.processes import Serve, Workers
from tests.slack_fake import SlackFake
from tests.test_worker_crash import approve_rollback, counting_app, runs
from tests.test_workflow_e2e import db_revision, start

pytestmark = pytest.mark.timeout(300)


async def test_sigterm_hands_a_repeatable_step_to_another_worker(
    make_bot: Any,
    ssh_env_migrated: SshEnv,
    tmp_path: Path,
    workers_factory: Callable[[Bot], Workers],
) -> None:
    env = ssh_env_migrated
    cfg, count = counting_app(env, tmp_path, monitor="6s")
    async with make_bot({"myapp": cfg}, with_worker=False) as bot:
        workers = workers_factory(bot)
        workers.spawn("worker-A")
        await approve_rollback(bot)
        await bot.wait_step("monitor")
        workers.spawn("worker-B")
        exited = await asyncio.to_thread(workers.stop, "worker-A")
        assert exited == 0  # a clean stop, not a crash

        incident = await bot.wait_status("completed", timeout=120)
        assert incident.step("monitor").worker == "worker-B"
        thread = bot.thread_text()
        assert "`worker-A` is stopping" in thread and "goes to another worker" in thread
        assert "stopped mid-way" not in thread and "took over" not in thread
        assert runs(count) == 1
        assert env.db_url and db_revision(env.db_url) == "b2c3d4e5f6a1"
        timeline = await bot.runtime.store.timeline(incident.id)
        assert any(e["what"] == "handed over: Monitor" for e in timeline), timeline


@pytest.fixture
async def serve_bot(
    slack: SlackFake,
    redis_url: str,
    ssh_env_migrated: SshEnv,
    tmp_path: Path,
    serve_factory: Callable[..., Serve],
) -> AsyncIterator[tuple[Bot, Serve, Path]]:
    cfg, count = counting_app(ssh_env_migrated, tmp_path, slow_downgrade=4, monitor="6s")
    cfg["operators"] = ["U0CAROL", "S0ONCALL"]  # a click then asks Slack for the group
    path = write_apps(tmp_path / "apps.yaml", {"myapp": cfg}, tmp_path / "incidents")
    env = settings_env(slack, redis_url, path, tmp_path / "workspace")
    serve = serve_factory(env)
    store = RedisStore(connect(redis_url))
    try:
        async with aiohttp.ClientSession() as session:
            await serve.start()
            runtime = cast(Any, SimpleNamespace(store=store))
            yield Bot(slack, runtime, serve.url, session, path, env), serve, count
    finally:
        await store.r.aclose()


async def test_a_rolling_restart_of_every_process_loses_nothing(
    serve_bot: tuple[Bot, Serve, Path], ssh_env_migrated: SshEnv, tmp_path: Path,
    workers_factory: Callable[[Bot], Workers],
) -> None:  # fmt: skip
    bot, serve, count = serve_bot
    workers = workers_factory(bot)
    workers.spawn("worker-A")
    workers.spawn("worker-B")
    await start(bot)
    decision = await bot.gate("Roll back")

    assert await asyncio.to_thread(serve.stop) == 0
    await serve.start()
    # serve restarted with a click in flight (Slack slow to say who is in the group): the
    # click is finished before serve exits.
    bot.slack.slow("usergroups.users.list", 3.0, times=1)
    await bot.click(decision, "Roll back", "U0CAROL")
    assert await asyncio.to_thread(serve.stop) == 0
    assert "finishing 1 request(s) in flight" in (tmp_path / "serve-2.log").read_text()
    assert (await bot.incident()).decision is not None, "the click in flight was dropped"
    await serve.start()

    approval = await bot.gate("Approve downgrade", timeout=90)
    await bot.click(approval, "Approve downgrade", "U0ALICE")
    # The worker running the downgrade (not safe to repeat) is stopped mid-way: it finishes
    # the downgrade first, then exits; the next step goes to another worker.
    await bot.slack.wait_until(lambda: runs(count) == 1, timeout=60, what="the downgrade")
    first = (await bot.incident()).step("db_rollback").worker
    other = "worker-B" if first == "worker-A" else "worker-A"
    assert await asyncio.to_thread(workers.stop, first) == 0
    assert (await bot.incident()).step("db_rollback").status.value == "succeeded"
    workers.spawn(f"{first}2")
    # The redeploy is one script per host now and may be over before this process looks.
    await bot.wait_step("redeploy", "running", "succeeded")
    assert await asyncio.to_thread(workers.stop, other) == 0
    workers.spawn(f"{other}2")
    await bot.wait_step("monitor")
    assert await asyncio.to_thread(serve.stop) == 0
    await serve.start()

    incident = await bot.wait_status("completed", timeout=150)
    assert runs(count) == 1
    assert ssh_env_migrated.db_url and db_revision(ssh_env_migrated.db_url) == "b2c3d4e5f6a1"
    thread = bot.thread_text()
    assert "stopped mid-way" not in thread and "took over" not in thread
    assert incident.step("monitor").worker in {"worker-A2", "worker-B2"}
    assert incident.step("db_rollback").worker == first
    assert incident.step("db_rollback").attempts == 1
    await bot.slack.wait_until(lambda: len(bot.slack.messages("C0STAKEHOLDERS")) >= 2,
                               timeout=30, what="the end notice")  # fmt: skip
    notices = [bot.slack.all_text(m) for m in bot.slack.messages("C0STAKEHOLDERS")]
    assert len(notices) == 2 and "Recovered" in notices[1]  # told of the start and the end
    bot.slack.assert_no_errors()
