"""The team's signals in Verify and the monitor, on real parts: the SSH test hosts serve the
sample app, a real Prometheus scrapes them every second, users' traffic is sent to them.

v1.5.0 answers 500: its error rate fails Verify, which names the metric with its value, the
value before the bad deploy and the threshold; once v1.4.2 is back Verify passes. No series, or
Prometheus stopped mid-monitor, is inconclusive: said, and counted as failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.steps import monitor, redeploy, signals, verify
from bot.steps.context import StepContext
from bot.steps.signal_reads import before_rollback
from bot.views.report_signals import signals_section
from bot.workflow.baseline import Baseline
from bot.workflow.errors import StepError
from bot.workflow.model import Incident, StepId
from runners.ssh import SshRunner
from tests.fakes import RecordingNotifier, make_apps, make_ctx, make_incident, step_app
from tests.fixtures_hosts import MakeSshEnv, SshEnv, TestHost
from tests.metric_standins import API_KEY, APP_KEY, DatadogStandIn
from tests.prometheus_server import PROMETHEUS, PrometheusServer

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None and not Path(PROMETHEUS).exists(),
    reason="Debian's prometheus package is not installed (scripts/test.sh installs it)",
)

# `or vector(0)`: with no 5xx at all the numerator has no series, and no series is inconclusive.
ERROR_RATE = (
    '(sum(rate(http_requests_total{job="{app}",code=~"5.."}[5s])) or vector(0))'
    ' / sum(rate(http_requests_total{job="{app}"}[5s]))'
)


class Lab:
    """The SSH hosts, the Prometheus scraping them, and one incident's steps on them."""

    def __init__(self, env: SshEnv, prom: PrometheusServer, **overrides: Any) -> None:
        self.env, self.prom = env, prom
        metric = {"name": "checkout error rate", "provider": "prometheus", "url": prom.url,
                  "query": ERROR_RATE, "max": 0.01}  # fmt: skip
        cfg = {"metrics": [metric], "resources": {"cpu": 100, "memory": 100, "disk": 100}}
        self.cfg = {**cfg, **overrides}
        self.apps = make_apps(step_app(env, **self.cfg))
        self.runner = SshRunner(self.apps.apps["myapp"])
        self.incident: Incident = make_incident()
        self.notifier = RecordingNotifier()

    def ctx(self, step: StepId) -> StepContext:
        return make_ctx(
            self.apps, self.runner, step=step, incident=self.incident, notifier=self.notifier
        )

    async def rate(self) -> float | None:
        check = signals.metric_checks(self.apps.apps["myapp"], None)[0]
        return (await check.measure()).value

    async def until(self, ok: Callable[[float | None], bool], wait: float = 60) -> None:
        """Prometheus needs a few scrapes for a rate: read until `ok`."""
        deadline = time.monotonic() + wait
        while not ok(value := await self.rate()):
            assert time.monotonic() < deadline, f"the error rate stayed at {value}"
            await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def traffic(hosts: list[TestHost], every: float = 0.05) -> AsyncIterator[None]:
    """Requests to each host's /healthz all along, as users and a load balancer send them."""

    async def send() -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                for host in hosts:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(host.health_url) as resp:
                            await resp.read()
                await asyncio.sleep(every)

    task = asyncio.create_task(send())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def lab(make_ssh_env: MakeSshEnv, tmp_path: Path) -> AsyncIterator[Callable[..., Lab]]:
    env = make_ssh_env(ref="v1.4.2")  # the good version runs; each test deploys the bad one
    prom = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{h.app_port}" for h in env.hosts])
    made: list[Lab] = []
    await prom.start()

    def make(**overrides: Any) -> Lab:
        made.append(Lab(env, prom, **overrides))
        return made[-1]

    try:
        yield make
    finally:
        prom.stop()
        for each in made:
            await each.runner.close()


def deploy(env: SshEnv, version: str) -> datetime:
    for host in env.hosts:
        host.run(f"git checkout --quiet --force {version} && ./run.sh restart")
    return datetime.now(UTC)


async def test_verify_fails_on_the_bad_versions_error_rate_and_passes_once_it_is_back(
    lab: Callable[..., Lab],
) -> None:
    s = lab()
    async with traffic(s.env.hosts):
        await s.until(lambda v: v == 0)  # the good version's traffic is scraped
        deployed_at = deploy(s.env, "v1.5.0")
        await s.until(lambda v: v is not None and v > 0.5)
        s.incident.baseline = Baseline(version="v1.4.2", measured_at=deployed_at,
                                       deployed_at=deployed_at)  # fmt: skip
        s.incident.facts.assess.resources = await before_rollback(s.ctx(StepId.ASSESS))
        with pytest.raises(StepError) as failure:
            await verify.run(s.ctx(StepId.VERIFY))  # nothing rolled back yet: v1.5.0 runs

    said = failure.value.what
    assert "signal failed: checkout error rate 1 (before the bad deploy 0; max 0.01)" in said
    assert "❌ failed: checkout error rate 1 (before the bad deploy 0; max 0.01)" in s.notifier.text
    bad = s.incident.facts.verify.signals
    assert [(f.name, f.verdict, f.value, f.before) for f in bad] == [
        ("checkout error rate", "failed", 1.0, 0.0)
    ]
    assert bad[0].query == ERROR_RATE.replace("{app}", "myapp")
    # Each host's resource usage, read over SSH from /proc and df, is in the facts too.
    usage = s.incident.facts.verify.resources
    assert [u.host for u in usage] == ["web1", "web2"]
    for u in usage:
        assert u.verdict == "passed" and u.cpu is not None and u.memory is not None, u
        assert u.disk is not None and 0 < u.disk <= 100
        assert u.service.startswith("service: CPU "), u.service  # its pidfile was read
    assert [u.host for u in s.incident.facts.assess.resources] == ["web1", "web2"]
    assert "Resource usage before the rollback" in s.notifier.text

    # No traffic while v1.5.0 stops: its last 500s would be logged after the restart began.
    await redeploy.run(s.ctx(StepId.REDEPLOY))
    # Right after the restart the rate's window still holds v1.5.0's 500s: Verify re-reads
    # what does not pass, for up to verify.health_timeout, instead of failing the rollback. A
    # 15 s window holds them however long the redeploy took on a busy machine.
    held = {**s.cfg["metrics"][0], "query": ERROR_RATE.replace("[5s]", "[15s]")}
    s.cfg = {**s.cfg, "metrics": [held]}
    s.apps = make_apps(step_app(s.env, **{**s.cfg, "verify": {"health_timeout": "50s"}}))
    async with traffic(s.env.hosts):
        assert (await s.rate() or 0) > 0.01
        outcome = await verify.run(s.ctx(StepId.VERIFY))

    [good] = s.incident.facts.verify.signals
    assert good.verdict == "passed" and good.before == 0, good  # the last 500s may still count
    assert good.value is not None and good.value <= 0.01
    said = re.compile(r"checkout error rate [\d.]+ \(before the bad deploy 0; max 0\.01\)")
    assert said.fullmatch(good.said), good.said
    assert outcome.facts is not None
    assert f"✅ passed: {good.said}" in s.notifier.text
    waited = [f.waiting.get("signals", "") for f in s.notifier.parents]
    assert any(w.startswith("checkout error rate not passing yet — re-reading") for w in waited)


async def test_a_query_with_no_series_is_inconclusive_and_fails_verify(
    lab: Callable[..., Lab],
) -> None:
    nobody = {"name": "nobody's latency", "provider": "prometheus", "url": "http://127.0.0.1:1",
              "query": 'http_requests_total{job="nobody"}', "max": 1}  # fmt: skip
    s = lab()
    nobody["url"] = s.prom.url
    s = lab(metrics=[nobody], resources=None)
    with pytest.raises(StepError) as failure:  # no traffic needed: nobody has no series
        await verify.run(s.ctx(StepId.VERIFY))  # v1.4.2 runs: health, logs and smoke pass
    said = failure.value.what
    assert said.startswith("Verification failed: signal inconclusive: nobody's latency no value")
    assert "no data: the query returned no series" in said
    assert s.incident.facts.verify.signals[0].verdict == "inconclusive"
    assert s.incident.facts.verify.checks == {"health": True, "logs": True, "smoke": True}


async def test_prometheus_stopped_mid_monitor_is_inconclusive_and_counts_as_failing(
    lab: Callable[..., Lab],
) -> None:
    s = lab(monitor={"duration": "10s", "interval": "1s", "summary_every": "2s",
                     "failure_streak": 2})  # fmt: skip

    def passed_once() -> bool:  # a round read the rate and it passed (the parent shows it)
        return any(
            f.monitor.signals and f.monitor.signals[0].verdict == "passed"
            for f in s.notifier.parents
        )

    async with traffic(s.env.hosts):
        await s.until(lambda v: v == 0)
        s.incident.facts.assess.resources = await before_rollback(s.ctx(StepId.ASSESS))
        running = asyncio.create_task(monitor.run(s.ctx(StepId.MONITOR)))
        deadline = time.monotonic() + 30
        # Stopped after the first round that read it: the rounds left fail (not a summary's
        # pace, which on a busy machine may come too late for a streak before the end).
        while not passed_once():
            assert time.monotonic() < deadline and not running.done(), s.notifier.text
            await asyncio.sleep(0.1)
        s.prom.stop()
        with pytest.raises(StepError) as failure:
            await running

    gone = f"Prometheus at {s.prom.url} could not be reached (connection refused)"
    assert f"signal inconclusive: checkout error rate no value (max 0.01): {gone}" in (
        failure.value.what
    )
    assert any("signals failing 2 rounds in a row" in a and gone in a for a in s.notifier.alerts)
    figures = s.incident.facts.monitor
    assert figures.signals[0].verdict == "inconclusive" and figures.signal_streak >= 2
    assert 2 <= figures.signal_rounds_failed < figures.rounds
    assert figures.alerts == 1  # the signals' streak, told once
    assert f"❔ inconclusive: checkout error rate no value (max 0.01): {gone}" in s.notifier.text
    # Each host's usage now, beside the reading before the rollback.
    assert [r.host for r in figures.resources] == ["web1", "web2"]
    assert "web1: CPU " in s.notifier.text and "(before the rollback: web1: CPU " in (
        s.notifier.text
    )
    # The report's Signals section from these very facts.
    report = "\n".join(signals_section(s.incident))
    assert f"| n/a | max 0.01 | ❔ inconclusive: {gone} |" in report
    assert re.search(r"\| web2 \| CPU [\d.]+ %, memory [\d.]+ %, disk [\d.]+ % \| CPU ", report)


def test_hostile_values_are_refused_before_any_query() -> None:
    query = 'sum(rate(http_requests_total{job="{app}",version="{version}"}[1m]))'
    app = make_apps({
        "environment": "staging", "repo": "/tmp/myapp.git", "incident_channel": "C0INCIDENT",
        "ssh": {"transport": "local"}, "hosts": [{"name": "web1", "address": "10.0.0.11"}],
        "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
        "metrics": [{"name": "errors", "provider": "prometheus", "url": "http://prom:9090",
                     "query": query, "max": 1}],
    }).apps["myapp"]  # fmt: skip
    fine = signals.metric_checks(app, "v1.4.2")[0]
    assert fine.query == 'sum(rate(http_requests_total{job="myapp",version="v1.4.2"}[1m]))'
    check = signals.metric_checks(app, 'v1"} or vector(1) #')[0]
    result = asyncio.run(check.measure())
    assert result.verdict.value == "inconclusive" and not result.passed
    assert "is not a valid version: refusing to put it in a query" in result.reason
    assert check.query == "(not sent: a placeholder's value was refused)"


def test_a_metric_with_host_is_read_once_per_deploy_host() -> None:
    query = 'rate(http_requests_total{job="{app}",instance=~"{host}:.*",code="500"}[1m])'
    app = make_apps({
        "environment": "staging", "repo": "/tmp/myapp.git", "incident_channel": "C0INCIDENT",
        "ssh": {"transport": "local"}, "hosts": [{"name": "web1", "address": "10.0.0.11"},
                  {"name": "web2", "address": "10.0.0.12"}],
        "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
        "metrics": [{"name": "errors", "provider": "prometheus", "url": "http://prom:9090",
                     "query": query, "max": 1}],
    }).apps["myapp"]  # fmt: skip
    checks = signals.metric_checks(app, "v1.4.2")
    assert [(c.name, c.query) for c in checks] == [
        ("errors (web1)", query.replace("{app}", "myapp").replace("{host}", "web1")),
        ("errors (web2)", query.replace("{app}", "myapp").replace("{host}", "web2")),
    ]
    gone = asyncio.run(checks[1].measure())  # no Prometheus at prom:9090
    assert gone.name == "errors (web2)" and gone.verdict.value == "inconclusive"


async def test_verify_reads_datadog_with_the_keys_and_shows_them_nowhere(
    make_ssh_env: MakeSshEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_ssh_env(ref="v1.4.2")
    datadog = DatadogStandIn()
    await datadog.start()
    datadog.series["avg:checkout.errors{service:myapp}"] = [
        {"scope": "host:web1", "pointlist": [[1, 0.002], [2, 0.001]]}
    ]
    metric = {"name": "checkout errors", "provider": "datadog", "url": datadog.url,
              "query": "avg:checkout.errors{service:{app}}", "max": 0.01}  # fmt: skip
    apps = make_apps(step_app(env, metrics=[metric]))
    runner = SshRunner(apps.apps["myapp"])
    notifier, incident = RecordingNotifier(), make_incident()
    try:
        monkeypatch.setenv("DD_API_KEY", API_KEY)
        monkeypatch.setenv("DD_APP_KEY", APP_KEY)
        ctx = make_ctx(apps, runner, step=StepId.VERIFY, incident=incident, notifier=notifier)
        await verify.run(ctx)
        assert "✅ passed: checkout errors 0.001 (max 0.01)" in notifier.text
        monkeypatch.setenv("DD_APP_KEY", "dd-app-wrong")
        with pytest.raises(StepError) as failure:
            await verify.run(ctx)
    finally:
        await datadog.stop()
        await runner.close()
    assert failure.value.what.startswith(
        "Verification failed: signal inconclusive: checkout errors no value (max 0.01): "
    )
    assert "403" in failure.value.what
    shown = notifier.text + failure.value.what + incident.model_dump_json()
    assert API_KEY not in shown and APP_KEY not in shown and "dd-app-wrong" not in shown
