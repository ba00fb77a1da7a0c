"""Every kind of check behind the one `Check` protocol, built from the registry for the app on
the sshd test hosts and read over the real SSH runner: health URLs, logs, smoke tests."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.checks import Verdict
from bot.config.apps_file import parse_apps
from bot.steps import signals
from runners.ssh import SshRunner
from tests.fixtures_hosts import SshEnv


async def test_health_logs_and_smoke_are_checks_read_over_ssh(ssh_env: SshEnv) -> None:
    cfg = ssh_env.app_config()
    cfg["smoke"] = ["./smoke.sh login", "exit 3"]
    app = parse_apps({"apps": {"myapp": cfg}}, "test").apps["myapp"]
    web1, web2 = ssh_env.hosts  # both serve the bad version, which answers 500
    web1.run("git checkout --quiet --force v1.4.2 && ./run.sh restart")
    since = datetime.now(UTC)
    web2.run('echo "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ) ERROR checkout: pool exhausted" >> app.log')
    runner = SshRunner(app)
    try:
        checks = signals.app_checks(app, signals.Reading(runner, since), signals.KINDS)
        results = await signals.read(checks, since)
    finally:
        await runner.close()
    by = {r.name: r for r in results}
    assert [r.provider for r in results] == ["health"] * 4 + ["logs"] * 2 + ["smoke"] * 2
    good, broken = by[web1.health_url], by[web2.health_url]
    assert good.passed and good.status == 200 and good.value is not None, good.describe()
    assert (broken.verdict, broken.status, broken.host) == (Verdict.FAILED, 500, None)
    assert broken.reason == "HTTP 500: expected 200"
    assert by[f"logs on {web1.name}"].verdict is Verdict.PASSED
    bad = by[f"logs on {web2.name}"]
    assert bad.verdict is Verdict.FAILED and bad.host == web2.name
    assert bad.value == len(bad.lines) and bad.value >= 1
    assert any(line.endswith("ERROR checkout: pool exhausted") for line in bad.lines)
    smoke_host = app.hosts[0].name
    assert by[f"smoke `./smoke.sh login` on {smoke_host}"].passed
    failed = by[f"smoke `exit 3` on {smoke_host}"]
    assert (failed.verdict, failed.status, failed.reason) == (Verdict.FAILED, 3, "exit 3")


async def test_a_logs_command_that_cannot_be_written_is_inconclusive_never_a_pass(
    ssh_env: SshEnv,
) -> None:
    cfg = ssh_env.app_config()
    del cfg["deploy"]["commands"]["logs"]
    app = parse_apps({"apps": {"myapp": cfg}}, "test").apps["myapp"]
    reading = signals.Reading(SshRunner(app), datetime.now(UTC))
    results = await signals.read(signals.app_checks(app, reading, ("logs",)), None)
    assert {(r.verdict, r.reason) for r in results} == {
        (Verdict.INCONCLUSIVE, "no `logs` command configured (deploy.commands.logs)")
    }
    assert not any(r.passed for r in results)


def test_each_kind_registers_itself_from_its_own_module() -> None:
    """A kind is one module: its builder sits beside its check and registers itself there."""
    from bot.checks.kinds import registry

    found = {k.name: k.build.__module__ for k in registry().values()}
    assert list(found) == ["health", "logs", "smoke", "metrics", "resources"]
    assert found == {
        "health": "bot.checks.health",
        "logs": "bot.checks.logs",
        "smoke": "bot.checks.smoke",
        "metrics": "bot.checks.metrics_config",
        "resources": "bot.checks.resources_check",
    }
