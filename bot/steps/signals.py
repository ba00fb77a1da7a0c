"""An app's checks, built from its apps file entry: health URLs, logs, smoke tests, metrics and
resources.

`KINDS` is the registry: each kind of check (its model and its `Check` in `bot.checks`) has one
builder here, from the app and a `Reading` (the runner, the version, since when logs count), and
`app_checks` builds every kind asked for; the deploy watch reads the app through it. For the
team's own signals: `metric_checks` builds the app's metric checks (placeholders `{app}` and
`{version}`), `resource_checks` one resources check per deploy host over the runner the step
already has (its SSH sessions), and `read` measures them all at once, each metric also at the
bad deploy's time when a deploy was recorded (`Baseline.deployed_at`). A result becomes a typed
fact (`fact`, `resource_fact`) and a line of words (`line`); `trouble` is what a step fails on:
failed or inconclusive, never counted a pass.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.checks import (
    Check,
    CheckEnv,
    CheckResult,
    MetricBase,
    Placeholders,
    ResourcesCheck,
    Verdict,
    build_check,
    health,
    measure_with_before,
)
from bot.checks.logs import NO_ERRORS, LogsCheck
from bot.checks.placeholders import fields
from bot.checks.resources_check import Ran, Runs
from bot.checks.result import inconclusive
from bot.checks.smoke import SmokeCheck
from bot.config.apps_file import AppConfig, HostConfig
from bot.ports import HostRunner
from bot.workflow.baseline import Baseline
from bot.workflow.errors import UserFacingError
from bot.workflow.facts import ResourceFact, SignalFact
from runners import templates
from runners.strategies import strategy

if TYPE_CHECKING:
    import aiohttp

MARKS = {Verdict.PASSED: "✅", Verdict.FAILED: "❌", Verdict.INCONCLUSIVE: "❔"}


def check_env(environ: Mapping[str, str] | None = None) -> CheckEnv:
    """The providers' keys (`DD_API_KEY`, `DD_APP_KEY`), read when a step runs, not at import."""
    return CheckEnv.from_environ(os.environ if environ is None else environ)


def metric_checks(app: AppConfig, version: str | None, env: CheckEnv | None = None) -> list[Check]:
    """One check per `metrics:` entry, or per deploy host for one that uses `{host}`; a
    refused placeholder value gives an inconclusive check (never a pass)."""
    env = env or check_env()
    return [c for metric in app.metrics for c in checks_of(app, metric, version, env)]


def checks_of(
    app: AppConfig, metric: MetricBase, version: str | None, env: CheckEnv
) -> list[Check]:
    if "host" not in fields(metric.url) | fields(getattr(metric, "query", "")):
        return [build_check(metric, env, Placeholders(app.name, version=version))]
    hosts = strategy(app.deploy.strategy).deploy_hosts(app)
    return [
        OnHost(build_check(metric, env, Placeholders(app.name, h.name, version)), h.name)
        for h in hosts
    ]


def planned(app: AppConfig, version: str | None) -> list[str]:
    """Every query a rollback to `version` will judge, with its provider and threshold."""
    env = CheckEnv()  # no keys needed to write a query down
    out = [
        f"{c.name} ({metric.provider}, {metric.threshold.describe(metric.unit)}): `{c.query}`"
        for metric in app.metrics
        for c in checks_of(app, metric, version, env)
    ]
    if app.resources is not None:
        r = app.resources
        limits = f"max CPU {r.cpu:g} %, memory {r.memory:g} %, disk {r.disk:g} %"
        out += [f"{c.name} ({limits}): {c.query}" for c in resource_checks(app, _NoRunner())]
    return out


class _NoRunner:
    """For a plan: resource checks are listed, never run."""

    async def run(self, host: str, command: str, *, timeout: float | None = None) -> Ran:
        raise RuntimeError("a plan runs nothing")


@dataclass(frozen=True)
class OnHost:
    """A per-host metric's check: its results named for the host, e.g. `error rate (web1)`."""

    check: Check
    host: str

    @property
    def name(self) -> str:
        return f"{self.check.name} ({self.host})"

    @property
    def query(self) -> str:
        return self.check.query

    @property
    def reads_the_past(self) -> bool:
        return self.check.reads_the_past

    async def measure(self, at: datetime | None = None) -> CheckResult:
        return replace(await self.check.measure(at), name=self.name)


def resource_checks(app: AppConfig, runner: HostRunner | Runs) -> list[Check]:
    """One per deploy host when `resources:` is set, read over `runner` (no agent)."""
    if app.resources is None:
        return []
    hosts = strategy(app.deploy.strategy).deploy_hosts(app)
    return [ResourcesCheck(runner, h.name, app.run_dir(h), app.resources) for h in hosts]


def deploy_time(baseline: Baseline | None) -> datetime | None:
    """When the bad deploy was made, if Rewind was told of it (its watch's record)."""
    return baseline.deployed_at if baseline is not None else None


async def read(checks: Sequence[Check], deployed_at: datetime | None) -> list[CheckResult]:
    """Every check at once; a metric also before the bad deploy when its time is known."""
    return list(await asyncio.gather(*(measure_with_before(c, deployed_at) for c in checks)))


def trouble(results: Sequence[CheckResult]) -> list[CheckResult]:
    """The results a step fails on: failed, or inconclusive (no data is not a pass)."""
    return [r for r in results if not r.passed]


def line(result: CheckResult) -> str:
    """`❌ failed: checkout error rate 0.2 (before the bad deploy 0; max 0.01)`."""
    return f"{MARKS[result.verdict]} {result.summary()}"


def fact(result: CheckResult) -> SignalFact:
    return SignalFact(
        name=result.name,
        provider=result.provider,
        verdict=result.verdict.value,
        value=result.value,
        before=result.before,
        unit=result.unit,
        threshold=result.threshold.describe(result.unit),
        query=result.query,
        said=result.describe(),
    )


def resource_fact(result: CheckResult) -> ResourceFact:
    by = {s.labels.split(" ")[0]: s.value for s in result.series}
    return ResourceFact(
        host=result.name.removeprefix("resources on "),
        verdict=result.verdict.value,
        cpu=by.get("CPU"),
        memory=by.get("memory"),
        disk=by.get("disk"),
        service=result.note.rpartition("; ")[2] if result.note else "",
        said=result.describe(),
    )


def is_resources(result: CheckResult) -> bool:
    return result.provider == "resources"


def usage_line(fact: ResourceFact) -> str:
    """`web1: CPU 12 %, memory 40 %, disk 61 %`."""

    def pct(value: float | None) -> str:
        return "?" if value is None else f"{value:.3g} %"

    return f"{fact.host}: CPU {pct(fact.cpu)}, memory {pct(fact.memory)}, disk {pct(fact.disk)}"


# ---- every kind of check, one registry ------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What an app's checks are built with, besides the app."""

    runner: HostRunner | Runs  # the host runner the caller keeps (its SSH sessions)
    since: datetime  # logs count from here (the restart, or the reported deploy)
    version: str | None = None  # for the metrics' `{version}`
    offsets: Mapping[str, int] = field(default_factory=dict)  # each host's UTC offset
    session: aiohttp.ClientSession | None = None  # the health probes' own, when shared


def health_checks(app: AppConfig, r: Reading) -> list[Check]:
    """One probe per health URL, per host for a URL with placeholders."""
    return [health.HealthProbe(t, r.session) for t in health.targets(app)]


def logs_checks(app: AppConfig, r: Reading) -> list[Check]:
    """Each host's error lines since `r.since`; a host whose command cannot be written is
    inconclusive (never a pass) and says why."""
    hosts = strategy(app.deploy.strategy).deploy_hosts(app)  # where the app runs and logs
    return [logs_check(app, host, r) for host in hosts]


def logs_check(app: AppConfig, host: HostConfig, r: Reading) -> Check:
    offset = r.offsets.get(host.name, 0)
    since = strategy(app.deploy.strategy).since(r.since, offset)
    try:
        cmd = templates.build(app, host, "logs", since=since)
    except UserFacingError as exc:
        return Unreadable(f"logs on {host.name}", host.name, str(exc))
    if cmd is None:
        return Unreadable(f"logs on {host.name}", host.name, "no `logs` command configured")
    windowed = "{since}" in templates.template(app, "logs")
    return LogsCheck(r.runner, host.name, cmd, r.since, offset, app.logs.error_pattern,
                     timeout=min(app.deploy.timeout, 60), windowed=windowed)  # fmt: skip


def smoke_checks(app: AppConfig, r: Reading) -> list[Check]:
    """Each smoke test on the smoke host; one that cannot be filled in says why (not a pass)."""
    if not app.smoke:
        return []
    host = smoke_host(app)
    out: list[Check] = []
    for template in app.smoke:
        name = f"smoke `{template}` on {host.name}"
        try:
            cmd = smoke_command(app, host, template)
        except (UserFacingError, ValueError, IndexError) as exc:
            why = f"`{template}` cannot be filled in: {exc}"
            out.append(Unreadable(name, host.name, why, "smoke"))
            continue
        out.append(SmokeCheck(r.runner, host.name, template, cmd))
    return out


def smoke_host(app: AppConfig) -> HostConfig:
    db = app.database
    return app.host(db.run_on) if db else app.hosts[0]


def smoke_command(app: AppConfig, host: HostConfig, template: str) -> str:
    """Raises UserFacingError, ValueError or IndexError for a template that cannot be filled."""
    return templates.in_workdir(
        app, host, templates.render(template, templates.host_values(app, host))
    )


@dataclass(frozen=True)
class Unreadable:
    """A check that cannot be made (no command, a value refused): inconclusive, with why."""

    name: str
    host: str
    reason: str
    provider: str = "logs"
    query: str = "(not run)"
    reads_the_past: bool = False

    async def measure(self, at: datetime | None = None) -> CheckResult:
        found = inconclusive(self.name, NO_ERRORS, self.query, self.reason, provider=self.provider)
        return replace(found, host=self.host)


KINDS: dict[str, Callable[[AppConfig, Reading], list[Check]]] = {
    "health": health_checks,
    "logs": logs_checks,
    "smoke": smoke_checks,
    "metrics": lambda app, r: metric_checks(app, r.version),
    "resources": lambda app, r: resource_checks(app, r.runner),
}


def app_checks(app: AppConfig, r: Reading, kinds: Sequence[str] = tuple(KINDS)) -> list[Check]:
    """Every check of `app` of these kinds, in the registry's order."""
    return [c for kind in kinds for c in KINDS[kind](app, r)]
