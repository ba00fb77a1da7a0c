"""Prometheus figures: `GET /metrics` on the web process, and on each worker's `METRICS_PORT`.

Labels are bounded (apps, steps, hosts and API methods come from the apps file and the code);
no label or value ever holds a token, a secret or a user's text.
"""

from __future__ import annotations

import platform
from collections import Counter as Tally
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from bot import __version__
from bot.workflow.model import Status

REGISTRY = CollectorRegistry()
BUILD = Info("rewind_build", "Rewind's version and the Python it runs on", registry=REGISTRY)
BUILD.info({"version": __version__, "python": platform.python_version()})

INCIDENTS_OPENED = Counter(
    "rewind_incidents_opened_total", "Incidents opened", ["app"], registry=REGISTRY
)
INCIDENTS = Gauge(
    "rewind_incidents",
    "Open incidents by state (read from Redis at each scrape)",
    ["state"],
    registry=REGISTRY,
)
OPEN_INCIDENTS = Gauge("rewind_open_incidents", "Open incidents", registry=REGISTRY)
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
SSH_SECONDS = Histogram(
    "rewind_ssh_command_seconds",
    "Duration of commands run on the hosts",
    ["app", "host"],
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
SSH_FAILURES = Counter(
    "rewind_ssh_command_failures_total",
    "Commands on the hosts that exited non-zero, timed out or lost the connection",
    ["app", "host", "kind"],
    registry=REGISTRY,
)
SLACK_CALLS = Counter(
    "rewind_slack_api_calls_total", "Slack Web API calls", ["method"], registry=REGISTRY
)
SLACK_RATE_LIMITED = Counter(
    "rewind_slack_rate_limited_total",
    "Slack Web API answers 429 (or ratelimited)",
    ["method"],
    registry=REGISTRY,
)
SLACK_ERRORS = Counter(
    "rewind_slack_errors_total",
    "Slack calls that failed after retries",
    ["method"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "rewind_queue_depth", "Step jobs waiting in the queue (read at each scrape)", registry=REGISTRY
)

INCIDENTS_ENDED = Counter(
    "rewind_incidents_ended_total", "Incidents ended, by final state", ["state"], registry=REGISTRY
)
for _status in Status:
    (INCIDENTS if _status.open else INCIDENTS_ENDED).labels(state=_status.value)


async def refresh(
    open_states: Callable[[], Awaitable[list[str]]],
    queued: Callable[[], Awaitable[int]] | None = None,
) -> None:
    """Read the figures that live in Redis, just before a scrape."""
    counts = Tally(await open_states())
    for status in Status:
        if status.open:
            INCIDENTS.labels(state=status.value).set(counts.get(status.value, 0))
    OPEN_INCIDENTS.set(sum(counts.values()))
    if queued is not None:
        QUEUE_DEPTH.set(await queued())
