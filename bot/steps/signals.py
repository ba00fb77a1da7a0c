"""An app's checks, built from its apps file entry: health URLs, logs, smoke tests, metrics and
resources.

The registry is `bot.checks.kinds`: each kind of check registers its own builder in its module,
next to its model, its `Check` and how it is read. `site` gives a builder what it needs of the
app and of a `Reading` (the runner, the version, since when logs count, the step's shell and
kept sessions), `app_checks` builds every kind asked for (the deploy watch and the plan read the
app through it) and `groups` every kind a step judges, each with its `Kind` (its policy), which
Verify and the monitor read through `read_groups`. For the
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.checks import (
    Check,
    CheckEnv,
    CheckResult,
    MetricBase,
    Verdict,
    measure_with_before,
    metrics_config,
)
from bot.checks.kinds import Kept, Kind, Shell, Site, Spot, registry
from bot.checks.resources_check import Ran, Runs
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
    return KINDS["metrics"].build(site(app, Reading(_NoRunner(), _NOW), version, env))


def checks_of(
    app: AppConfig, metric: MetricBase, version: str | None, env: CheckEnv
) -> list[Check]:
    return metrics_config.checks_of(metric, site(app, Reading(_NoRunner(), _NOW), version, env))


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
    # Any other kind's checks, as they will be read (the plan lists the runbook's own apart).
    where = site(app, Reading(_NoRunner(), _NOW), version, env)
    for name, each in registry().items():
        if name not in (*LISTED_APART, "metrics", "resources"):
            out += [f"{c.name}: `{c.query}`" for c in each.build(where)]
    return out


LISTED_APART = ("health", "logs", "smoke")  # the plan lists them with Verify's commands


class _NoRunner:
    """For a plan: resource checks are listed, never run."""

    async def run(self, host: str, command: str, *, timeout: float | None = None) -> Ran:
        raise RuntimeError("a plan runs nothing")


def resource_checks(app: AppConfig, runner: HostRunner | Runs) -> list[Check]:
    """One per deploy host when `resources:` is set, read over `runner` (no agent)."""
    return KINDS["resources"].build(site(app, Reading(runner, _NOW)))


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
    since_by: Mapping[str, datetime] = field(default_factory=dict)  # a host's own restart
    shell: Shell | None = None  # the step's, for the smoke tests (fenced, shown, one script)
    kept: Kept | None = None  # the monitor's sessions, kept open across its rounds


_NOW = datetime(1970, 1, 1, tzinfo=UTC)  # for a kind that reads no logs: never used


def site(
    app: AppConfig, r: Reading, version: str | None = None, env: CheckEnv | None = None
) -> Site:
    """What a kind's builder needs of `app` and of this read (`bot.checks.kinds.Site`)."""
    plan = strategy(app.deploy.strategy)
    spots = tuple(
        Spot(h.name, app.run_dir(h), r.offsets.get(h.name, 0), r.since_by.get(h.name))
        for h in plan.deploy_hosts(app)
    )

    def fill(host: str, template: str, extra: Mapping[str, str]) -> str:
        h = app.host(host)
        try:
            values = templates.host_values(app, h, **extra)
            return templates.in_workdir(app, h, templates.render(template, values))
        except (UserFacingError, IndexError) as exc:
            raise ValueError(str(exc)) from exc

    return Site(app, spots, smoke_host(app).name, r.runner, r.since, fill,
                      lambda name: templates.template(app, name), plan.since,
                      command_timeout=app.deploy.timeout, version=version or r.version,
                      env=env or check_env(), session=r.session, shell=r.shell,
                      kept=r.kept)  # fmt: skip


def smoke_host(app: AppConfig) -> HostConfig:
    db = app.database
    return app.host(db.run_on) if db else app.hosts[0]


def smoke_command(app: AppConfig, host: HostConfig, template: str) -> str:
    """Raises UserFacingError, ValueError or IndexError for a template that cannot be filled."""
    return templates.in_workdir(
        app, host, templates.render(template, templates.host_values(app, host))
    )


KINDS = registry()  # the kinds Rewind ships; `registry()` also has any registered since
OnHost = metrics_config.OnHost


def app_checks(app: AppConfig, r: Reading, kinds: Sequence[str] | None = None) -> list[Check]:
    """Every check of `app` of these kinds (default: every kind), in the registry's order."""
    found, where = registry(), site(app, r)
    return [c for name in (kinds or tuple(found)) for c in found[name].build(where)]


@dataclass
class Group:
    """One kind's checks for an app, with the kind (its policy and its name)."""

    kind: Kind
    checks: list[Check]
    refused: str = ""  # the kind's builder refused the apps file entry, saying why

    @property
    def name(self) -> str:
        return self.kind.name


def groups(
    app: AppConfig, r: Reading, keep: Callable[[Kind], bool] = lambda k: True
) -> list[Group]:
    """Each kind of the registry that `keep` keeps, in order, with its checks for `app`. A
    builder that refuses a value (ValueError, e.g. a health URL that cannot be filled in) gives
    a group with no checks and the reason: never a pass."""
    where = site(app, r)
    out: list[Group] = []
    for each in registry().values():
        if not keep(each):
            continue
        try:
            out.append(Group(each, each.build(where)))
        except ValueError as exc:
            out.append(Group(each, [], str(exc)))
    return out


async def read_groups(
    found: Sequence[Group], deployed_at: datetime | None
) -> list[list[CheckResult]]:
    """Each group's checks read by its kind's own reader, every kind at once."""
    reads = (g.kind.read(g.checks, deployed_at) for g in found)
    return list(await asyncio.gather(*reads))
