"""Prometheus figures for `GET /metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
INCIDENTS_OPENED = Counter(
    "rewind_incidents_opened_total", "Incidents opened", ["app"], registry=REGISTRY
)
STEPS = Counter(
    "rewind_steps_total", "Step executions by result", ["step", "result"], registry=REGISTRY
)
STEP_SECONDS = Histogram(
    "rewind_step_seconds",
    "Step duration",
    ["step"],
    registry=REGISTRY,
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800),
)
OPEN_INCIDENTS = Gauge("rewind_open_incidents", "Open incidents", registry=REGISTRY)
SLACK_ERRORS = Counter(
    "rewind_slack_errors_total",
    "Slack calls that failed after retries",
    ["method"],
    registry=REGISTRY,
)
