"""Checks: the signals a rollback is judged by, each read and judged into a typed result.

A check (`base.Check`) reads one signal now or, where the provider can, at a past time (the
value before the bad deploy) and judges it: passed, failed or inconclusive (no data, no answer,
an error; never a pass). Each kind of check is one module with its apps-file model, its check
and its builder, which registers itself in `kinds` with how its checks are read (`bot.steps.
signals` builds the `kinds.Site` a builder is given): health URLs (`health`), a host's logs
since a time (`logs`), smoke tests (`smoke`), the team's metrics (`metrics_config`) and a host's
resource usage, read over the host runner the monitor already has (`resources_check`). A metric
provider is one module with its own config model, in `metrics_config.PROVIDERS` (Prometheus,
Datadog, web).

Verify, the monitor, the deploy watch and the plan build the app's checks from the registry;
Verify and the monitor read every kind it has, each by its own policy (`kinds.Kind`: `settle`,
`rounds`, `read`, `missing`).

A new kind of check:
- one module here: its config model, its `Check`, and its builder with `@kind(name, order,
  ...)`. `kinds.registry()` finds it; Verify judges it (read again while it does not pass, for
  up to `verify.health_timeout`, unless `settle=False`), the monitor reads it every round
  (unless `rounds=False`), and both say it as a signal: its verdict, value and threshold, a
  failed or inconclusive one failing Verify and counting as a failing round.
- its key in the apps file: a field of `AppConfig` (`bot/config/apps_file.py`, whose models
  refuse keys they do not know), and the same property on `kinds.AppView` for its builder to
  read it typed. A kind that needs no configuration of its own needs neither.
- only if it should look different from a signal: its words in Verify, in its own module
  (`@kind(..., words=Words(...))`, as health, logs and smoke tests have), or figures of its
  own in the monitor's facts (`bot/steps/monitor._Monitor.INTO` and `MonitorFacts`).
- nothing else: the deploy watch reads every kind the monitor reads each round (`rounds`,
  `bot/watch/probe.watched`), and the plan lists the new kind's queries with the signals
  (`bot.steps.signals.planned`).

May import: pydantic, aiohttp (the HTTP providers). Never Slack, Redis, SSH
libraries or the apps file module (which will import this package): a runner comes in through
the small `resources_check.Runs` protocol.
"""

from __future__ import annotations

from bot.checks.base import Check, CheckEnv, MetricBase, Provider, measure_with_before
from bot.checks.datadog import DatadogMetric
from bot.checks.metrics_config import (
    PROVIDERS,
    MetricConfig,
    Refused,
    build_check,
    metrics_problems,
    parse_metrics,
)
from bot.checks.placeholders import Placeholders
from bot.checks.prometheus import PrometheusMetric
from bot.checks.resources import ResourcesConfig, ResourceUsage
from bot.checks.resources_check import ResourcesCheck
from bot.checks.result import CheckResult, SeriesResult, Threshold, Verdict
from bot.checks.web import WebMetric

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
    "Refused",
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
