"""Verify and the monitor judge every kind the registry has: a kind registered here, in the
test, with `@kind` and no line of Verify's or the monitor's own, is read by its policy, shown,
and fails or passes the step, on the SSH test hosts serving the sample app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.checks import Check, CheckResult, Threshold
from bot.checks.kinds import Site, kind, registry, unregister
from bot.steps import monitor, redeploy, signals, verify
from bot.watch import probe
from bot.workflow.errors import StepError
from bot.workflow.model import StepId
from tests.fakes import make_apps
from tests.fixtures_hosts import SshEnv
from tests.test_verify import Steps

LIMIT = Threshold(max=1)


@dataclass
class Canary:
    """A check of the test's own kind: it reads the values it is given, one per read, the
    last one for good, and counts its reads."""

    host: str
    values: list[float]
    reads: list[datetime | None] = field(default_factory=list)
    reads_the_past: bool = False

    @property
    def name(self) -> str:
        return f"canary on {self.host}"

    @property
    def query(self) -> str:
        return f"canary({self.host})"

    async def measure(self, at: datetime | None = None) -> CheckResult:
        self.reads.append(at)
        value = self.values.pop(0) if len(self.values) > 1 else self.values[0]
        return CheckResult(self.name, LIMIT.judge(value), value, LIMIT, self.query, "canary",
                           host=self.host)  # fmt: skip


BUILT: list[Canary] = []
VALUES: dict[str, list[float]] = {}
ONE_OFF: list[Canary] = []  # checks of a kind read once, after the settling ones, never in rounds


def canaries(site: Site) -> list[Check]:
    made = [Canary(s.name, list(VALUES[s.name])) for s in site.deploy_hosts if s.name in VALUES]
    BUILT.extend(made)
    return list(made)


def one_off(site: Site) -> list[Check]:
    ONE_OFF.append(Canary(site.deploy_hosts[0].name, [0]))
    return [ONE_OFF[-1]]


@pytest.fixture
def canary_kind() -> Iterator[None]:
    kind("canary", order=60)(canaries)
    kind("one-off", order=70, settle=False, rounds=False)(one_off)
    BUILT.clear()
    VALUES.clear()
    ONE_OFF.clear()
    try:
        yield
    finally:
        unregister("canary")
        unregister("one-off")


@pytest.fixture
async def steps(ssh_env: SshEnv) -> Any:
    made: list[Steps] = []

    def make(**overrides: Any) -> Steps:
        made.append(Steps(ssh_env, **overrides))
        return made[-1]

    yield make
    for s in made:
        await s.runner.close()


async def test_verify_reads_a_new_kind_again_while_it_settles_then_passes(
    canary_kind: None, steps: Any
) -> None:
    assert list(registry())[-2:] == ["canary", "one-off"]
    VALUES["web2"] = [5, 5, 0.5]  # failing twice after the restart, then within its max
    s = steps(verify={"health_timeout": "20s", "health_interval": "0.2s"})
    await redeploy.run(s.ctx(StepId.REDEPLOY))

    outcome = await verify.run(s.ctx(StepId.VERIFY))

    [check] = BUILT
    assert len(check.reads) == 3  # read again while it failed, not after it passed
    assert "*Signals*\n✅ passed: canary on web2 0.5 (max 1)" in s.notifier.text
    [once] = ONE_OFF
    assert len(once.reads) == 1  # `settle=False`: read once
    assert "*Signals*\n✅ passed: canary on web1 0 (max 1)" in s.notifier.text
    assert [(f.name, f.verdict, f.value) for f in s.incident.facts.verify.signals] == [
        ("canary on web2", "passed", 0.5),
        ("canary on web1", "passed", 0),
    ]
    assert all(outcome.criteria.values()) and outcome.hosts["web2"].ok


async def test_verify_fails_on_a_new_kind_and_names_it(canary_kind: None, steps: Any) -> None:
    VALUES["web1"] = [7]
    s = steps(verify={"health_timeout": "1s", "health_interval": "0.2s"})
    await redeploy.run(s.ctx(StepId.REDEPLOY))

    with pytest.raises(StepError) as failure:
        await verify.run(s.ctx(StepId.VERIFY))

    err = failure.value
    assert err.what == "Verification failed: signal failed: canary on web1 7 (max 1)"
    assert "❌ failed: canary on web1 7 (max 1)" in s.notifier.text
    assert not err.hosts["web1"].ok and "canary on web1 7" in err.hosts["web1"].summary
    assert err.hosts["web2"].ok
    # The runbook's own checks passed: only the new kind failed Verify.
    assert s.incident.facts.verify.checks == {"health": True, "logs": True, "smoke": True}


async def test_the_monitor_counts_a_new_kinds_failing_rounds_and_alerts(
    canary_kind: None, steps: Any
) -> None:
    VALUES["web1"] = [3]  # fails every round
    s = steps(monitor={"duration": "1.5s", "interval": "0.3s", "summary_every": "1m",
                       "failure_streak": 2})  # fmt: skip
    await redeploy.run(s.ctx(StepId.REDEPLOY))

    with pytest.raises(StepError) as failure:
        await monitor.run(s.ctx(StepId.MONITOR))

    [check] = BUILT
    assert ONE_OFF == []  # a kind with `rounds=False` is not even built for the monitor
    mon = s.incident.facts.monitor
    # Once a round; the round at the window's end is always read, so there are two at least.
    assert len(check.reads) == mon.rounds >= 2
    assert "signal failed: canary on web1 3 (max 1)" in failure.value.what
    assert [a for a in s.notifier.alerts if "canary" in a] == [
        "myapp: signals failing 2 rounds in a row during monitoring after the rollback "
        "(failed: canary on web1 3 (max 1))."
    ]
    assert mon.signal_rounds_failed == mon.signal_streak == mon.rounds
    assert [(f.name, f.verdict) for f in mon.signals] == [("canary on web1", "failed")]
    assert "• ❌ failed: canary on web1 3 (max 1)" in s.notifier.text  # the last summary
    assert mon.availability == 100 and mon.error_count == 0  # health and logs as before


def test_the_plan_lists_a_new_kinds_checks(canary_kind: None) -> None:
    VALUES["web2"] = [0]
    app = make_apps({
        "environment": "staging", "repo": "/tmp/myapp.git", "incident_channel": "C0INCIDENT",
        "ssh": {"transport": "local"}, "hosts": [{"name": "web1", "address": "10.0.0.11"},
                  {"name": "web2", "address": "10.0.0.12"}],
        "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
    }).apps["myapp"]  # fmt: skip
    assert signals.planned(app, "v1.4.2") == [
        "canary on web2: `canary(web2)`",
        "canary on web1: `canary(web1)`",  # the one-off kind's
    ]
    assert [c.reads for c in BUILT + ONE_OFF] == [[], []]  # listed, never read


async def test_a_lost_lock_stops_verify_it_is_never_an_inconclusive_reading(steps: Any) -> None:
    """The checks read over the step's fenced runner: the fence's error ends the step as it
    is, it is not taken for a host that did not answer."""
    s = steps()
    await redeploy.run(s.ctx(StepId.REDEPLOY))
    ctx = s.ctx(StepId.VERIFY)

    async def lost() -> None:
        raise StepError("incident abc no longer holds the lock on myapp")

    ctx.fence = lost
    with pytest.raises(StepError) as failure:
        await verify.run(ctx)
    assert failure.value.what == "incident abc no longer holds the lock on myapp"
    assert "Smoke tests" not in s.notifier.text  # nothing more was run


@pytest.mark.usefixtures("canary_kind")
async def test_the_deploy_watch_reads_a_new_kind_each_tick(ssh_env: SshEnv, steps: Any) -> None:
    """The watch reads every kind the monitor reads each round: the test's kind is read on a
    tick as a signal, with its value; one not read in rounds (as smoke tests) is not built."""
    VALUES.update({h.name: [7.0] for h in ssh_env.hosts})
    s = steps()
    now = datetime.now(UTC)
    tick = await probe.one_round(1, "w1", s.apps.apps["myapp"], s.runner, now, {}, now)
    canary = [f for f in tick.signals if f.name.startswith("canary")]
    assert len(canary) == len(ssh_env.hosts) and all(f.value == 7.0 for f in canary), canary
    assert ONE_OFF == [] and "smoke" not in probe.watched()
