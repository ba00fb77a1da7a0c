"""The apps file's `metrics:` key: its config models, its providers, and its kind of checks.

`MetricConfig` is one entry of `metrics:`; its `provider` picks the model (each provider's
module has its own, and its entry in `PROVIDERS`). `metrics_problems` finds what the models
cannot see one entry at a time. The `metrics` kind builds one check per entry, or per deploy
host for an entry that uses `{host}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated

from pydantic import Field, TypeAdapter

from bot.checks.base import Check, CheckEnv, MetricBase, Provider
from bot.checks.datadog import DATADOG, DatadogMetric
from bot.checks.kinds import Site, kind
from bot.checks.placeholders import Placeholders, fields
from bot.checks.prometheus import PROMETHEUS, PrometheusMetric
from bot.checks.resources import ResourcesConfig
from bot.checks.result import CheckResult, Threshold, inconclusive
from bot.checks.web import WEB, WebMetric

MetricConfig = Annotated[
    PrometheusMetric | DatadogMetric | WebMetric, Field(discriminator="provider")
]
METRICS = TypeAdapter(list[MetricConfig])


def parse_metrics(data: object) -> list[PrometheusMetric | DatadogMetric | WebMetric]:
    """A `metrics:` list, validated (pydantic's ValidationError names the entry and the key)."""
    return METRICS.validate_python(data)


def metrics_problems(metrics: Sequence[PrometheusMetric | DatadogMetric | WebMetric]) -> list[str]:
    """Two metrics of one name would be told apart by nobody in the thread or the report."""
    seen: set[str] = set()
    out: list[str] = []
    for i, metric in enumerate(metrics):
        if metric.name.casefold() in seen:
            out.append(f"metrics[{i}]: a second metric named {metric.name!r}: give each its own")
        seen.add(metric.name.casefold())
    return out


PROVIDERS: dict[str, Provider] = {p.name: p for p in (PROMETHEUS, DATADOG, WEB)}


def build_check(metric: MetricBase, env: CheckEnv, values: Placeholders) -> Check:
    """The check of `metric` for these values. A value refused in a placeholder gives a check
    that is always inconclusive and says why: it never raises and never passes."""
    provider = PROVIDERS[metric.provider]
    try:
        return provider.build(metric, env, values)
    except ValueError as exc:
        return Refused(metric.name, metric.threshold, str(exc))


class Refused:
    """A metric that cannot be read safely for these values: inconclusive, with the reason."""

    reads_the_past = False

    def __init__(self, name: str, threshold: Threshold, reason: str) -> None:
        self.name, self.threshold, self.reason = name, threshold, reason
        self.query = "(not sent: a placeholder's value was refused)"

    async def measure(self, at: datetime | None = None) -> CheckResult:
        return inconclusive(self.name, self.threshold, self.query, self.reason)


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


def checks_of(metric: MetricBase, site: Site) -> list[Check]:
    """The checks of one entry: once, or once per deploy host when it uses `{host}`."""
    app, version = site.app.name, site.version
    if "host" not in fields(metric.url) | fields(getattr(metric, "query", "")):
        return [build_check(metric, site.env, Placeholders(app, version=version))]
    return [
        OnHost(build_check(metric, site.env, Placeholders(app, s.name, version)), s.name)
        for s in site.deploy_hosts
    ]


@kind("metrics", order=40)
def metric_checks(site: Site) -> list[Check]:
    """One check per `metrics:` entry (per host for `{host}`); a refused placeholder value
    gives an inconclusive check (never a pass)."""
    return [c for metric in site.app.metrics for c in checks_of(metric, site)]


__all__ = [
    "METRICS",
    "PROVIDERS",
    "MetricConfig",
    "OnHost",
    "Refused",
    "ResourcesConfig",
    "build_check",
    "metrics_problems",
    "parse_metrics",
]
