"""The apps file's `metrics:` and `resources:` keys, as config models.

`MetricConfig` is one entry of `metrics:`; its `provider` picks the model (each provider's
module has its own). `metrics_problems` finds what the models cannot see one entry at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field, TypeAdapter

from bot.checks.datadog import DatadogMetric
from bot.checks.prometheus import PrometheusMetric
from bot.checks.resources import ResourcesConfig
from bot.checks.web import WebMetric

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


__all__ = ["METRICS", "MetricConfig", "ResourcesConfig", "metrics_problems", "parse_metrics"]
