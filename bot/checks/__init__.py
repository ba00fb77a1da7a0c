"""Checks: the signals a rollback is judged by, each read and judged into a typed result.

A check (`base.Check`) reads one signal now or, where the provider can, at a past time (the
value before the bad deploy) and judges it: passed, failed or inconclusive (no data, no answer,
an error; never a pass). A metric provider is one module with its own config model, registered
in `PROVIDERS` (Prometheus, Datadog, web); a host's resource usage is read over the host runner
the monitor already has (`resources_check`). Health URLs (`health.HealthProbe`), a host's logs
since a time (`logs.LogsCheck`) and smoke tests (`smoke.SmokeCheck`) are checks too, each module
with its apps-file model; `bot.steps.signals.KINDS` builds every kind of an app's checks.

May import: pydantic, aiohttp (the HTTP providers). Never Slack, Redis, SSH
libraries or the apps file module (which will import this package): a runner comes in through
the small `resources_check.Runs` protocol.
"""

from __future__ import annotations

from bot.checks.base import Check, CheckEnv, MetricBase, Provider, measure_with_before
from bot.checks.datadog import DATADOG, DatadogMetric
from bot.checks.metrics_config import MetricConfig, metrics_problems, parse_metrics
from bot.checks.placeholders import Placeholders
from bot.checks.prometheus import PROMETHEUS, PrometheusMetric
from bot.checks.resources import ResourcesConfig, ResourceUsage
from bot.checks.resources_check import ResourcesCheck
from bot.checks.result import CheckResult, SeriesResult, Threshold, Verdict, inconclusive
from bot.checks.web import WEB, WebMetric

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

    async def measure(self, at: object = None) -> CheckResult:
        return inconclusive(self.name, self.threshold, self.query, self.reason)


__all__ = [
    "PROVIDERS",
    "Check",
    "CheckEnv",
    "CheckResult",
    "DatadogMetric",
    "MetricBase",
    "MetricConfig",
    "Placeholders",
    "PrometheusMetric",
    "Provider",
    "ResourceUsage",
    "ResourcesCheck",
    "ResourcesConfig",
    "SeriesResult",
    "Threshold",
    "Verdict",
    "WebMetric",
    "build_check",
    "measure_with_before",
    "metrics_problems",
    "parse_metrics",
]
