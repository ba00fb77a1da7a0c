"""`kill -9` of a worker mid-step: another worker (a real subprocess) takes the incident over."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures_hosts import SshEnv
from tests.harness import Bot
from tests.processes import Workers
from tests.test_ssh_connections import until
from tests.test_workflow_e2e import config, db_revision, start


def counting_app(
    env: SshEnv, tmp_path: Path, *, slow_downgrade: float = 0, monitor: str | None = None
) -> tuple[dict[str, Any], Path]:
    """The end-to-end tests' app whose alembic counts real (not --sql) downgrades on the host,
    in the file returned (see `runs`); `monitor`: how long to monitor, every 0.5 s."""
    count = tmp_path / "downgrades.count"
    script = tmp_path / "alembic-counting.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = downgrade ] && [ "$2" != --sql ]; then echo run >> {count}; '
        f"sleep {slow_downgrade}; fi\n"
        'exec alembic -c alembic.ini "$@"\n'
    )
    script.chmod(0o755)
    cfg = config(env)
    cfg["database"]["alembic"] = f"sh {script}"
    if monitor:
        cfg["monitor"] = {"duration": monitor, "interval": "0.5s"}
    return cfg, count


def runs(count: Path) -> int:
    return len(count.read_text().splitlines()) if count.exists() else 0


async def approve_rollback(bot: Bot, decision_timeout: float = 60) -> None:
    """Start the incident, decide to roll back, approve the database downgrade."""
    await start(bot)
    await bot.click(await bot.gate("Roll back", decision_timeout), "Roll back", "U0CAROL")
    await bot.click(await bot.gate("Approve downgrade", timeout=90), "Approve downgrade", "U0ALICE")


async def test_killed_during_a_repeatable_step_another_worker_completes_it(
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
        workers.kill("worker-A")
        assert [h.ssh_connections() for h in env.hosts] == [1, 1]  # worker-A's, Assess on
        workers.spawn("worker-B")
        incident = await bot.wait_status("completed", timeout=120)
        assert incident.step("monitor").worker == "worker-B"
        thread = bot.thread_text()
        assert "worker-B" in thread and "resumed" in thread and "safe to repeat" in thread
        assert runs(count) == 1  # the database downgrade ran exactly once
        assert env.db_url and db_revision(env.db_url) == "b2c3d4e5f6a1"
        # worker-B opened its own connection per host for the step it resumed (and may open
        # one again if the kept one is lost on a loaded machine: it reconnects, issue 21)
        assert all(h.ssh_connections() >= 2 for h in env.hosts), [
            h.ssh_connections() for h in env.hosts
        ]
        await until(lambda: all(h.open_connections() == 0 for h in env.hosts), "all closed")


async def test_killed_during_the_downgrade_the_incident_pauses_for_a_person(
    make_bot: Any,
    ssh_env_migrated: SshEnv,
    tmp_path: Path,
    workers_factory: Callable[[Bot], Workers],
) -> None:
    env = ssh_env_migrated
    cfg, count = counting_app(env, tmp_path, slow_downgrade=4)
    async with make_bot({"myapp": cfg}, with_worker=False) as bot:
        workers = workers_factory(bot)
        workers.spawn("worker-A")
        await approve_rollback(bot)
        await bot.slack.wait_until(lambda: runs(count) == 1, timeout=60, what="downgrade")
        workers.kill("worker-A")
        workers.spawn("worker-B")
        gate = await bot.gate("Retry", timeout=90)
        text = bot.slack.all_text(gate)
        assert "stopped mid-way" in text and "not safe to repeat" in text
        assert "took over" in bot.thread_text()
        incident = await bot.incident()
        assert incident.status.value == "paused"
        assert runs(count) == 1  # never re-run behind the operator's back
        await bot.click(gate, "Abort", "U0CAROL")
        incident = await bot.wait_status("aborted")
        assert "Stopped mid-way: Roll back database" in incident.outcome
