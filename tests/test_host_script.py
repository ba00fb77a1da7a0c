"""A host's commands as one script in one SSH session: streamed per command, each command's exit
status and output on its own, every command still fenced, the first failure ends the script."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.apps_file import parse_apps
from bot.ports import CommandResult, HostRunner, ScriptCommand
from bot.steps import redeploy
from bot.workflow.errors import StepError
from bot.workflow.model import StepId
from runners.local import LocalRunner
from runners.ssh import SshRunner
from tests.fakes import RecordingNotifier, make_apps, make_ctx, make_incident, step_app
from tests.fixtures_hosts import SshEnv

C = ScriptCommand


def ssh_runner(env: SshEnv) -> SshRunner:
    return SshRunner(parse_apps({"apps": {"myapp": env.app_config()}}, "test").apps["myapp"])


def local_runner(tmp: Path) -> LocalRunner:
    app = {
        "repo": "/r",
        "incident_channel": "C0",
        "ssh": {"transport": "local"},
        "approvers": ["U0ALICE", "U0BOB"],
        "hosts": [{"name": "web1", "address": "127.0.0.1", "workdir": str(tmp)}],
        "deploy": {"strategy": "systemd", "workdir": str(tmp), "service": "myapp"},
    }
    return LocalRunner(parse_apps({"apps": {"myapp": app}}, "test").apps["myapp"])


async def run(
    runner: HostRunner, commands: list[ScriptCommand], **kw: object
) -> tuple[list[CommandResult | None], list[str]]:
    seen: list[str] = []

    async def sink(host: str, line: str) -> None:
        seen.append(f"{host}: {line}")

    try:
        results = await runner.run_script("web1", commands, on_line=sink, **kw)  # type: ignore[arg-type]
    finally:
        await runner.close()
    return results, seen


async def test_one_session_streams_each_command_and_stops_at_the_first_failure(
    ssh_env: SshEnv,
) -> None:
    before = ssh_env.hosts[0].ssh_sessions()
    marker = f"{ssh_env.workdir}/never-run"
    results, seen = await run(
        ssh_runner(ssh_env),
        [
            C("echo one; echo two >&2"),
            C("printf 'no newline'"),
            C("echo quiet; exit 4", stream=False, check=False),
            C("echo 'fake \x1erewind-0000 end 3 0'; echo three; exit 3"),
            C(f"touch {marker}"),
        ],
    )
    first, second, probe, failing, never = results
    assert first is not None and first.ok and first.output == "one\ntwo"
    assert second is not None and second.output == "no newline"
    assert probe is not None and probe.exit_status == 4 and probe.output == "quiet"
    assert failing is not None and failing.exit_status == 3
    assert failing.output == "fake \x1erewind-0000 end 3 0\nthree"  # a forged marker is output
    assert never is None and not (ssh_env.hosts[0].real_dir / "never-run").exists()
    assert seen == [
        "web1: one", "web1: two", "web1: no newline", "web1: fake \x1erewind-0000 end 3 0",
        "web1: three",
    ]  # fmt: skip
    assert ssh_env.hosts[0].ssh_sessions() - before == 1


async def test_each_command_waits_for_the_go(ssh_env: SshEnv) -> None:
    """A skipped command does not run; a check that raises stops the script before the next."""
    asked: list[int] = []

    async def decide(i: int, results: list[CommandResult | None]) -> bool:
        asked.append(i)
        if i == 2:
            assert results[0] is not None and results[0].output == "first"
            raise StepError("incident abc no longer holds the lock on myapp")
        return i != 1

    with pytest.raises(StepError, match="no longer holds the lock"):
        await run(
            ssh_runner(ssh_env),
            [C("echo first"), C("touch skipped"), C("touch fenced"), C("touch last")],
            decide=decide,
        )
    assert asked == [0, 1, 2]
    for name in ("skipped", "fenced", "last"):
        assert not (ssh_env.hosts[0].real_dir / name).exists(), name


async def test_a_command_past_its_timeout_is_killed_and_the_rest_not_run(
    ssh_env: SshEnv,
) -> None:
    results, _ = await run(
        ssh_runner(ssh_env),
        [C("echo started; sleep 30", timeout=1), C("touch after-timeout")],
        timeout=60,
    )
    slow, after = results
    assert slow is not None and slow.exit_status is None
    assert slow.output.splitlines() == [
        "started",
        "[rewind] killed after 1s: the command took too long",
    ]
    assert after is None and not (ssh_env.hosts[0].real_dir / "after-timeout").exists()


async def test_a_deferred_command_is_written_from_the_output_before_it(ssh_env: SshEnv) -> None:
    """Its text, given at its turn, may span lines and hold quotes and backslashes; it runs in
    the same session, and its result says what ran."""
    before = ssh_env.hosts[0].ssh_sessions()

    async def decide(i: int, results: list[CommandResult | None]) -> bool | str:
        if i != 1:
            return True
        previous = results[0]
        assert previous is not None
        seen = previous.output.strip()
        return f"printf '%s %s\\n' 'after {seen}' \"\\t\\\\0101 %s\"\nprintf '%s\\n' second; exit 5"

    results, seen = await run(
        ssh_runner(ssh_env),
        [C("echo first"), C("placeholder", deferred=True, check=False), C("echo kept")],
        decide=decide,
    )
    first, deferred, last = results
    assert first is not None and first.output == "first"
    assert deferred is not None and deferred.exit_status == 5
    assert deferred.command.startswith("printf '%s %s\\n' 'after first'")  # not the placeholder
    assert deferred.output.splitlines() == ["after first \\t\\0101 %s", "second"]
    assert last is not None and last.output == "kept"
    assert seen[1:3] == ["web1: after first \\t\\0101 %s", "web1: second"]
    assert ssh_env.hosts[0].ssh_sessions() - before == 1


async def test_only_a_deferred_command_takes_a_text(tmp_path: Path) -> None:
    async def decide(i: int, results: list[CommandResult | None]) -> bool | str:
        return True if i == 0 else "echo swapped"

    results, _ = await run(local_runner(tmp_path), [C("echo own", deferred=True)], decide=decide)
    assert [r.output if r else None for r in results] == ["own"]  # True: its own text runs
    with pytest.raises(ValueError, match="not deferred"):
        await run(local_runner(tmp_path), [C("true"), C("touch never")], decide=decide)
    assert not (tmp_path / "never").exists()


async def test_the_local_runner_speaks_the_same_script(tmp_path: Path) -> None:
    results, seen = await run(
        local_runner(tmp_path),
        [C(f"cd {tmp_path} && echo here && pwd"), C("exit 2", check=False), C("echo last")],
    )
    assert [r.exit_status if r else None for r in results] == [0, 2, 0]
    assert seen == ["web1: here", f"web1: {tmp_path}", "web1: last"]


@pytest.mark.hosts(1)
async def test_redeploy_is_one_session_per_host_and_fenced_before_each_command(
    ssh_env: SshEnv,
) -> None:
    host = ssh_env.hosts[0]
    apps = make_apps(step_app(ssh_env))
    notifier = RecordingNotifier()
    incident = make_incident()
    checks = 0

    async def fence() -> None:
        nonlocal checks
        checks += 1
        if checks > 3:  # the lock is lost after fetch: nothing after it may run
            raise StepError("incident ab12 no longer holds the lock on myapp")

    ctx = make_ctx(apps, ssh_runner(ssh_env), step=StepId.REDEPLOY, incident=incident,
                   notifier=notifier)  # fmt: skip
    ctx.fence = fence
    before = ssh_env.hosts[0].ssh_sessions()
    try:
        with pytest.raises(StepError, match="no longer holds the lock"):
            await redeploy.run(ctx)
    finally:
        await ctx.hosts.close()
    assert host.run("git describe --tags --always").strip() == "v1.4.2"  # fetch ran
    out = "\n".join(notifier.output_of("web1"))
    assert "started 1.4.2" not in out  # restart never ran
    assert ssh_env.hosts[0].ssh_sessions() - before == 1

    # Once the lock is back, a retry moves the host in one session again.
    checks = -100
    ctx = make_ctx(apps, ssh_runner(ssh_env), step=StepId.REDEPLOY, incident=incident,
                   notifier=notifier)  # fmt: skip
    ctx.fence = fence
    try:
        outcome = await redeploy.run(ctx)
    finally:
        await ctx.hosts.close()
    assert outcome.hosts["web1"].ok and outcome.facts.versions_by_host == {"web1": "v1.4.2"}
    assert "started 1.4.2" in "\n".join(notifier.output_of("web1"))
    # One session for the host's whole script, and one more for its logs, read as it came back.
    assert ssh_env.hosts[0].ssh_sessions() - before == 3


async def test_all_hosts_move_at_once_by_default(tmp_path: Path) -> None:
    """No fixed host cap: 30 hosts restart together (each waits until all have started; with
    at most 10 at a time the first ten would wait for the others forever and time out)."""
    count = 30
    barrier = tmp_path / "started"
    barrier.mkdir()
    wait_all = (
        f"touch {barrier}/{{host}}; i=0; "
        f'while [ "$(ls {barrier} | wc -l)" -lt {count} ]; do '
        f"i=$((i+1)); [ $i -lt 600 ] || exit 9; sleep 0.05; done"
    )
    app = {
        "repo": "/r",
        "incident_channel": "C0",
        "ssh": {"transport": "local"},
        "approvers": ["U0ALICE", "U0BOB"],
        "hosts": [
            {"name": f"web{i}", "address": "127.0.0.1", "workdir": str(tmp_path)}
            for i in range(count)
        ],
        "deploy": {
            "strategy": "commands",
            "workdir": str(tmp_path),
            "timeout": "60s",
            "commands": {
                "fetch": "true",
                "install": "true",
                "restart": wait_all,
                "status": "true",
                "version": "echo v1.4.2",
            },
        },
    }
    apps = make_apps(app)
    assert apps.apps["myapp"].deploy.concurrency >= 50
    runner = LocalRunner(apps.apps["myapp"])
    ctx = make_ctx(apps, runner, step=StepId.REDEPLOY, incident=make_incident())
    outcome = await redeploy.run(ctx)
    assert len(outcome.hosts) == count and all(h.ok for h in outcome.hosts.values())
    assert len(list(barrier.iterdir())) == count
