"""One SSH connection per host per incident, a session per command: counted at the sshd hosts.

An incident keeps one connection per host from Assess to the report; a connection lost on the
way is reopened by the next command; a worker that resumes a step opens its own; and none is left
open once the incident has ended, whichever process ended it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.config.apps_file import parse_apps
from bot.ports import ScriptCommand
from bot.workflow.errors import HostError
from runners.ssh import SshRunner
from tests.fixtures_hosts import SshEnv, TestHost
from tests.harness import Bot
from tests.processes import Workers
from tests.test_plan import plan_via_slack
from tests.test_workflow_e2e import config, start


def counts(hosts: list[TestHost]) -> dict[str, tuple[int, int]]:
    """(connections, sessions) each host's sshd has accepted so far."""
    return {h.name: (h.ssh_connections(), h.ssh_sessions()) for h in hosts}


def opened_since(hosts: list[TestHost], before: dict[str, tuple[int, int]]) -> dict[str, Any]:
    now = counts(hosts)
    return {n: (now[n][0] - before[n][0], now[n][1] - before[n][1]) for n in now}


async def all_closed(bot: Bot, hosts: list[TestHost], what: str) -> None:
    """Until sshd holds no connection open on any host (it saw the bot's close)."""
    del bot
    await until(lambda: all(h.open_connections() == 0 for h in hosts), what)


async def until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Polls: what sshd holds tells no one when it changes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"no {what} within {timeout:.0f} s"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(300)  # a whole rollback with a database; slow on a loaded machine
async def test_a_whole_incident_keeps_one_connection_per_host_and_closes_it_at_the_end(
    make_bot: Any, ssh_env_migrated: SshEnv
) -> None:
    env = ssh_env_migrated
    async with make_bot({"myapp": config(env)}) as bot:
        before = counts(env.hosts)
        _, message = await plan_via_slack(bot)
        planned = opened_since(env.hosts, before)
        # The plan's read-only probe has a connection of its own, closed once the plan is made.
        assert {n: c for n, (c, _) in planned.items()} == {"web1": 1, "web2": 1}
        await all_closed(bot, env.hosts, "the plan's connections closed")

        before = counts(env.hosts)
        await bot.click(message, "Run this plan", "U0CAROL")
        await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
        await bot.click(await bot.gate("Approve downgrade", timeout=90), "Approve", "U0ALICE")
        incident = await bot.wait_status("completed", timeout=120)
        assert incident.step("report").status.value == "succeeded"
        ran = opened_since(env.hosts, before)
        print(f"plan: {planned}; incident: {ran}  (connections, sessions) per host")
        # Assess to the report: one connection per host, a session per command or script.
        assert {n: c for n, (c, _) in ran.items()} == {"web1": 1, "web2": 1}
        assert all(s > 1 for _, s in ran.values())
        await all_closed(bot, env.hosts, "the incident's connections closed at its end")


async def test_a_connection_dropped_between_steps_is_reopened_by_the_next_command(
    make_bot: Any, ssh_env: SshEnv
) -> None:
    env = ssh_env
    web1, web2 = env.hosts
    async with make_bot({"myapp": config(env)}) as bot:
        await start(bot)
        decision = await bot.gate("Roll back")
        assert web1.ssh_connections() == 1 and web1.open_connections() == 1
        assert web1.drop_connections() == 1  # the host's side of it dies while people decide
        await bot.click(decision, "Roll back", "U0CAROL")
        incident = await bot.wait_status("completed", timeout=120)
        assert [s.id for s in incident.steps if s.status.value == "failed"] == []
        assert web1.ssh_connections() == 2 and web2.ssh_connections() == 1
        assert web1.run("cat VERSION").strip() == "1.4.2"
        await all_closed(bot, env.hosts, "connections closed at the end")


async def test_a_connection_dropped_mid_command_pauses_the_step_for_retry(
    make_bot: Any, ssh_env: SshEnv
) -> None:
    """A command cut off mid-way may have done part of its work: the step fails and waits for a
    person (Retry), as any unreachable host does; Retry opens a new connection and goes on.

    The cut comes while web1's restart is really running (it waits for a file the test writes),
    never between commands, where a lost connection is simply opened again."""
    env = ssh_env
    web1, web2 = env.hosts
    cfg = config(env)
    wait = "touch .restart-started && while [ ! -e .restart-go ]; do sleep 0.1; done"
    cfg["deploy"]["commands"]["restart"] = f"{wait} && ./run.sh restart"
    web2.run("touch .restart-go")
    async with make_bot({"myapp": cfg}) as bot:
        await start(bot)
        await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
        await until(lambda: ".restart-started" in web1.run("ls -a"), "web1's restart under way", 60)
        assert web1.drop_connections() == 1
        gate = await bot.gate("Retry", timeout=90)
        assert "web1" in bot.slack.all_text(gate)
        assert (await bot.incident()).status.value == "paused"
        web1.run("touch .restart-go")
        await bot.click(gate, "Retry", "U0CAROL")
        await bot.wait_status("completed", timeout=120)
        assert web1.ssh_connections() == 2
        assert web1.run("cat VERSION").strip() == "1.4.2"
        await all_closed(bot, env.hosts, "connections closed at the end")


async def test_an_incident_ended_by_another_process_leaves_no_connection_open(
    make_bot: Any, ssh_env: SshEnv, workers_factory: Callable[[Bot], Workers]
) -> None:
    """The worker (a process of its own) assessed and keeps its connections for the next step;
    the Abort is taken by the web process. The worker still closes them."""
    env = ssh_env
    async with make_bot({"myapp": config(env)}, with_worker=False) as bot:
        workers_factory(bot).spawn("worker-A")
        await start(bot)
        gate = await bot.gate("Roll back")
        assert [h.open_connections() for h in env.hosts] == [1, 1]
        await bot.click(gate, "Abort", "U0CAROL")
        await bot.wait_status("aborted")
        await all_closed(bot, env.hosts, "the worker's connections closed after the abort")


async def test_the_kept_connection_outlives_a_wait_and_is_closed_once_idle_too_long(
    make_bot: Any, ssh_env: SshEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache looks at its runners often (here every 0.1 s): an incident still open keeps its
    connection while people decide; one left idle past `RUNNER_IDLE` loses it, and its next step
    connects again."""
    from bot.incidents import host_runners

    env = ssh_env
    monkeypatch.setattr(host_runners, "RUNNER_REAP", 0.1)
    async with make_bot({"myapp": config(env)}) as bot:
        await start(bot)
        decision = await bot.gate("Roll back")
        await asyncio.sleep(1)  # ten looks of the cache's reaper
        assert [h.open_connections() for h in env.hosts] == [1, 1]
        monkeypatch.setattr(host_runners, "RUNNER_IDLE", 0.5)
        await all_closed(bot, env.hosts, "the idle connections closed")
        await bot.click(decision, "Roll back", "U0CAROL")
        await bot.wait_status("completed", timeout=120)
        assert [h.ssh_connections() for h in env.hosts] == [2, 2]


def ssh_runner(env: SshEnv) -> SshRunner:
    return SshRunner(parse_apps({"apps": {"myapp": env.app_config()}}, "test").apps["myapp"])


def cut(host: TestHost) -> None:
    """The host's side of every connection dies, and this process does not see it yet: the
    wait blocks the event loop, so the connection's end is read only by the next command."""
    assert host.drop_connections() == 1
    deadline = time.monotonic() + 10
    while host.open_connections() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.open_connections() == 0


async def test_a_connection_lost_unseen_is_opened_again_by_the_next_command(
    ssh_env: SshEnv,
) -> None:
    web1 = ssh_env.hosts[0]
    r = ssh_runner(ssh_env)
    try:
        assert (await r.run("web1", "echo one")).output.strip() == "one"
        cut(web1)
        assert (await r.run("web1", "echo two")).output.strip() == "two"
        cut(web1)
        [result] = await r.run_script("web1", [ScriptCommand("echo three")])
        assert result is not None and result.output == "three"
        assert web1.ssh_connections() == 3
        sent = web1.commands()
        assert sent[:2] == ["echo one", "echo two"] and len(sent) == 3  # none sent twice
    finally:
        await r.close()
    await until(lambda: web1.open_connections() == 0, "the connection closed")


async def test_a_connection_lost_mid_command_is_an_error_and_never_runs_it_again(
    ssh_env: SshEnv, tmp_path: Path
) -> None:
    web1 = ssh_env.hosts[0]
    marker = tmp_path / "ran"
    r = ssh_runner(ssh_env)
    try:
        running = asyncio.create_task(r.run("web1", f"echo x >> {marker}; echo started; sleep 60"))
        await until(lambda: marker.exists(), "the command started")
        assert web1.drop_connections() == 1
        with pytest.raises(HostError, match=r"network: SSH connection to .* dropped"):
            await running
        assert marker.read_text() == "x\n"  # run once, not again behind the step's back
        assert (await r.run("web1", "echo after")).output.strip() == "after"
        assert web1.ssh_connections() == 2
    finally:
        await r.close()
