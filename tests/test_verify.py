"""Steps 5 and 6 on real SSH hosts serving the sample app: health, logs since the restart,
smoke tests, and monitoring with live figures and alerts."""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.checks import logs
from bot.steps import monitor, redeploy, signals, verify
from bot.steps.context import StepContext
from bot.steps.monitor_logs import KeptSessions
from bot.steps.signal_reads import reading
from bot.workflow.errors import StepError
from bot.workflow.model import Criterion, Incident, StepId
from runners.ssh import SshRunner
from tests.fakes import RecordingNotifier, make_apps, make_ctx, make_incident, step_app
from tests.fixtures_hosts import SshEnv, TestHost


class Steps:
    """Runs step bodies on the SSH hosts, one incident, a fresh context per step."""

    def __init__(self, env: SshEnv, **overrides: Any) -> None:
        self.apps = make_apps(step_app(env, **overrides))
        self.runner = SshRunner(self.apps.apps["myapp"])
        self.incident: Incident = make_incident()
        self.notifier = RecordingNotifier()

    def ctx(self, step: StepId) -> StepContext:
        return make_ctx(
            self.apps, self.runner, step=step, incident=self.incident, notifier=self.notifier
        )


@pytest.fixture
async def steps_for() -> AsyncIterator[Any]:
    made: list[Steps] = []

    def make(env: SshEnv, **overrides: Any) -> Steps:
        made.append(Steps(env, **overrides))
        return made[-1]

    yield make
    for s in made:
        await s.runner.close()


def back_to_broken(host: TestHost) -> None:
    host.run("git checkout --quiet --force v1.5.0 && ./run.sh restart")


def unchecked(s: Steps) -> None:
    """As if no host was checked as it came back (Redeploy's own checks): Verify checks all."""
    s.incident.facts.redeploy.verified.clear()


async def test_rolled_back_hosts_pass_although_the_old_version_logged_errors(
    ssh_env: SshEnv, steps_for: Any
) -> None:
    for host in ssh_env.hosts:
        assert host.health_status() == 500  # v1.5.0 logs an ERROR for each of these
    s = steps_for(ssh_env)
    await redeploy.run(s.ctx(StepId.REDEPLOY))

    outcome = await verify.run(s.ctx(StepId.VERIFY))

    assert outcome.criteria == {
        Criterion.HEALTH: True,
        Criterion.LOGS: True,
        Criterion.SMOKE: True,
    }
    for host in ssh_env.hosts:
        assert "ERROR" in host.run("cat app.log")  # the broken version's errors are there...
        assert outcome.hosts[host.name].ok  # ...and do not count
    thread = s.notifier.text
    assert f"✅ http://127.0.0.1:{ssh_env.hosts[1].app_port}/api/health (web2): 200" in thread
    assert "✅ web1: no errors in" in thread
    assert "✅ `./smoke.sh login` on web1" in thread
    assert "smoke checkout: PASS" in s.notifier.output_of("web1")  # smoke output streamed
    assert not any("smoke" in line for line in s.notifier.output_of("web2"))  # run on web1
    assert "4 health check(s) passing" in outcome.summary


async def test_broken_host_keeps_failing_its_probe(ssh_env: SshEnv, steps_for: Any) -> None:
    web1, web2 = ssh_env.hosts
    s = steps_for(ssh_env, verify={"health_timeout": "1s", "health_interval": "0.2s"})
    await redeploy.run(s.ctx(StepId.REDEPLOY))
    back_to_broken(web2)
    unchecked(s)

    with pytest.raises(StepError) as failure:
        await verify.run(s.ctx(StepId.VERIFY))

    err = failure.value
    assert err.what.startswith("Verification failed: health: ")
    assert f"{web2.health_url} (web2) HTTP 500" in err.what
    assert str(web1.app_port) not in err.what.split("logs")[0]
    assert err.hosts["web1"].ok
    assert not err.hosts["web2"].ok and "HTTP 500" in err.hosts["web2"].summary
    assert s.incident.facts.verify.checks["health"] is False
    assert f"❌ {web2.health_url} (web2): HTTP 500: expected 200" in s.notifier.text


async def test_error_in_log_and_failing_smoke_fail_verification(
    ssh_env: SshEnv, steps_for: Any
) -> None:
    web1, _ = ssh_env.hosts
    s = steps_for(ssh_env, smoke=["./smoke.sh login", "sh -c 'echo payment down; exit 1'"])
    await redeploy.run(s.ctx(StepId.REDEPLOY))
    web1.run(
        "echo \"$(date '+%Y-%m-%d %H:%M:%S'),500 ERROR myapp payment provider refused\" >> app.log"
    )
    sessions = web1.ssh_sessions()
    s.incident.step(StepId.VERIFY).attempts = 2  # a Retry checks every host again

    with pytest.raises(StepError) as failure:
        await verify.run(s.ctx(StepId.VERIFY))

    assert web1.ssh_sessions() - sessions == 2  # its logs, then both smoke tests in one session

    err = failure.value
    assert "logs on web1: 1 error line(s)" in err.what
    assert "smoke: `sh -c 'echo payment down; exit 1'` on web1 exit 1" in err.what
    assert "health" not in err.what
    assert "payment provider refused" in err.detail
    thread = s.notifier.text
    assert "❌ web1: 1 error line(s) since the restart" in thread
    assert "ERROR myapp payment provider refused" in thread  # the match is shown
    assert "✅ web2: no errors" in thread
    assert "payment down" in s.notifier.output_of("web1")
    assert s.incident.facts.verify.checks == {"health": True, "logs": False, "smoke": False}


async def test_monitor_keeps_live_figures(ssh_env: SshEnv, steps_for: Any) -> None:
    s = steps_for(ssh_env, monitor={"duration": "2s", "interval": "0.4s", "summary_every": "0.8s"})
    await redeploy.run(s.ctx(StepId.REDEPLOY))

    outcome = await monitor.run(s.ctx(StepId.MONITOR))

    assert outcome.criteria == {Criterion.MONITORED: True}
    mon = outcome.facts
    assert mon.done is True
    assert mon.availability == 100
    assert mon.error_count == 0
    # The window lasts its duration; how many rounds fit depends on the machine's load, but the
    # interval is kept (no busy loop) and every round updates the figures.
    assert mon.elapsed >= 2 and 1 <= mon.rounds <= 2 / 0.4 + 1
    assert len(mon.urls) == 4
    for url in mon.urls:
        assert url.availability == 100 and url.probes == mon.rounds
        assert 0 < url.p50_ms <= url.p95_ms < 2000
    # the parent was updated once per probe round, the thread got a summary per period
    assert len(s.notifier.parents) == mon.rounds
    assert s.notifier.parents[0].monitor.rounds == 1
    summaries = [t for t in s.notifier.said if t.startswith("*Monitoring* ")]
    assert len(summaries) <= mon.elapsed / 0.8 + 1  # one per period, not one per round
    assert any(t.startswith("*Monitoring done*") for t in s.notifier.said)
    assert s.notifier.alerts == []


async def test_monitor_alerts_on_a_failure_streak(ssh_env: SshEnv, steps_for: Any) -> None:
    web1, web2 = ssh_env.hosts
    s = steps_for(
        ssh_env,
        monitor={
            "duration": "1.5s",
            "interval": "0.3s",
            "summary_every": "1m",
            "failure_streak": 2,
        },
    )
    await redeploy.run(s.ctx(StepId.REDEPLOY))
    back_to_broken(web2)

    with pytest.raises(StepError) as failure:
        await monitor.run(s.ctx(StepId.MONITOR))

    assert f"{web2.health_url} (web2) still failing" in failure.value.what
    assert "new error line(s) on web2" in failure.value.what
    # one alert per failing URL, not one per failed probe
    assert len(s.notifier.alerts) == 2
    assert all("web2" in a and "2 probes in a row" in a for a in s.notifier.alerts)
    mon = s.incident.facts.monitor
    by_url = {u.url: u for u in mon.urls}
    assert by_url[web1.health_url].availability == 100
    assert by_url[web2.health_url].availability == 0
    assert mon.availability == 50
    assert mon.errors["web1"] == 0 and mon.errors["web2"] > 0
    assert mon.alerts == 2


class AfterRound(RecordingNotifier):
    """Runs `hooks[n]` right after round n (the parent is updated once per round)."""

    def __init__(self, hooks: dict[int, Callable[[], None]]) -> None:
        super().__init__()
        self.hooks = hooks

    async def update_parent(self, incident: Incident) -> None:
        await super().update_parent(incident)
        if hook := self.hooks.get(len(self.parents)):
            hook()


def log_error(host: TestHost, text: str, when: str = "now") -> str:
    """Appends an ERROR line stamped `when` (host time, to the millisecond) to the app's log."""
    stamp = host.run(f"date -d {when!r} '+%Y-%m-%d %H:%M:%S,%3N'").strip()
    line = f"{stamp} ERROR myapp {text}"
    host.run(f"echo {shlex.quote(line)} >> app.log")
    return line


async def test_monitor_reads_each_hosts_logs_over_one_session(
    ssh_env: SshEnv, steps_for: Any
) -> None:
    """The window starts at the host's restart (Redeploy checked the host as it came back, and
    nobody has read its logs since): an error written before the restart does not count, one
    written after the host's check but before the monitor began does, and so does one written
    during it; every round reads over the session the first one opened."""
    web1 = ssh_env.hosts[0]
    s = steps_for(ssh_env, monitor={"duration": "1s", "interval": "0.2s", "summary_every": "1m"})
    log_error(web1, "before the restart", when="10 minutes ago")
    await redeploy.run(s.ctx(StepId.REDEPLOY))
    between = log_error(web1, "after the host's check")
    new = ""

    def during() -> None:
        nonlocal new
        new = log_error(web1, "during monitoring")

    s.notifier = AfterRound({1: during})
    before = {h.name: h.ssh_sessions() for h in ssh_env.hosts}

    with pytest.raises(StepError) as failure:
        await monitor.run(s.ctx(StepId.MONITOR))

    assert "2 new error line(s) on web1" in failure.value.what
    mon = s.incident.facts.monitor
    assert mon.errors == {"web1": 2, "web2": 0} and mon.rounds >= 2
    assert new in s.notifier.text and between in s.notifier.text
    assert "before the restart" not in s.notifier.text
    opened = {h.name: h.ssh_sessions() - before[h.name] for h in ssh_env.hosts}
    assert opened == {"web1": 1, "web2": 1}


@pytest.mark.hosts(1)
async def test_a_hosts_log_session_is_opened_again_when_it_ends(
    ssh_env: SshEnv, steps_for: Any
) -> None:
    """All its reads used, or its connection dropped: a new session reads, and the window is
    kept (the clock is not read again). The monitor's logs check, from the registry, reads over
    the kept sessions."""
    web1 = ssh_env.hosts[0]
    s = steps_for(ssh_env)
    ctx = s.ctx(StepId.MONITOR)
    log_error(web1, "before monitoring", when="1 second ago")
    before = web1.ssh_sessions()
    kept = KeptSessions(ctx, reads=2)
    [check] = signals.app_checks(ctx.app, reading(ctx, kept=kept), ("logs",))
    try:
        first = await check.measure()
        window = kept.hosts["web1"].window
        line = log_error(web1, "during monitoring")
        second = await check.measure()
        third = await check.measure()  # the first script's two reads are used: a second session
        await s.runner.close()  # the connection drops while the session waits for the round
        dropped = await check.measure()
        after = await check.measure()
    finally:
        await kept.close()
    assert first.passed and first.reason == "" and first.name == "logs on web1"
    for found in (second, third, dropped, after):
        assert not found.passed and found.lines == (line,) and found.value == 1
    assert kept.hosts["web1"].window == window
    assert web1.ssh_sessions() - before == 3


def test_lines_since_restart() -> None:
    since = datetime(2024, 5, 2, 10, 0, 0, tzinfo=UTC)
    lines = [
        "  File 'app.py', line 3",  # continuation of an older record
        "2024-05-02 11:59:59,900 ERROR myapp before the restart",  # host at UTC+2
        "Traceback (most recent call last):",
        "2024-05-02 12:00:00,100 INFO myapp started version=1.4.2",
        "2024-05-02T10:00:01Z ERROR explicit zone, after",
        "  continued",
    ]
    kept, stamped = logs.lines_since(lines, since, 7200)
    assert stamped
    assert kept == lines[3:]
    kept, _ = logs.lines_since(lines, since, 0)  # a host on UTC wrote them all after 10:00
    assert kept == lines
    assert logs.lines_since(["no stamp", "ERROR"], since, 0) == (["no stamp", "ERROR"], False)
    # an unstamped head is kept when the first stamp is already after the restart
    kept, _ = logs.lines_since(["orphan", "2024-05-02 10:00:05 INFO ok"], since, 0)
    assert kept == ["orphan", "2024-05-02 10:00:05 INFO ok"]


def test_since_value_per_strategy() -> None:
    at = datetime(2024, 5, 2, 10, 0, 1, 250000, tzinfo=UTC)
    assert verify.since_value("systemd", at, 7200) == "2024-05-02 12:00:01"
    assert verify.since_value("docker-compose", at, 7200) == "2024-05-02T10:00:01.250000Z"
    assert logs.line_time("2024-05-02T12:00:01+02:00 x", 0) == datetime(
        2024, 5, 2, 10, 0, 1, tzinfo=UTC
    )
    assert logs.line_time("May 02 12:00:01 web1 myapp[1]: x", 0) is None


class WaitWatcher(RecordingNotifier):
    """Keeps what the parent's status line said of each wait, at every parent update."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[dict[str, str]] = []

    async def update_parent(self, incident: Incident) -> None:
        self.waits.append(dict(incident.facts.waiting))


async def test_waits_are_said_on_the_status_line_never_silent(
    ssh_env: SshEnv, steps_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.fronts.slack.text import md
    from bot.steps import context
    from bot.views.incident import waiting_lines

    web2 = ssh_env.hosts[1]
    s = steps_for(ssh_env, verify={"health_timeout": "8s", "health_interval": "1s"})
    s.notifier = watcher = WaitWatcher()
    await redeploy.run(s.ctx(StepId.REDEPLOY))
    back_to_broken(web2)
    unchecked(s)
    watcher.waits.clear()

    with pytest.raises(StepError):
        await verify.run(s.ctx(StepId.VERIFY))

    said = [w["health"] for w in watcher.waits if "health" in w]
    failing = "web2: /healthz answers 500; web2: /api/health answers 500 — retrying"
    assert f"{failing}, 0 s of 8 s" in said
    assert f"{failing}, 5 s of 8 s" in said
    assert not any("web1" in w for w in said)  # the healthy host is not waited for
    assert watcher.waits[-1] == {}  # the wait is over: the line is gone
    incident = make_incident()
    incident.facts.waiting = {"health": said[-1]}
    assert [md(w) for w in waiting_lines(incident)] == [f"      ⏳ {said[-1]}"]

    # A long command (a backup, a slow restart) says so every SILENCE seconds.
    monkeypatch.setattr(context, "SILENCE", 0.3)
    watcher.waits.clear()
    ctx = s.ctx(StepId.DB_PREPARE)
    await ctx.run(s.apps.apps["myapp"].host("web1"), "sleep 1", what="backup", stream=False)
    running = [w["web1"] for w in watcher.waits if "web1" in w]
    assert running and running[0].startswith("web1: backup still running — 0 s so far")
    assert re.search(r"\(limit \d+ s\)$", running[0]), running[0]
    assert watcher.waits[-1] == {}
