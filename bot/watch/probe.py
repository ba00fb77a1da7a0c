"""One round of a watch: every check of the app once, through the checks' one registry
(`bot.steps.signals.KINDS`, each kind registered by its own module in `bot.checks.kinds`):
health URLs, each host's logs since the deploy, the `metrics:` queries (each also read at the
deploy's time) and each host's `resources:` over the runner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp

from bot.checks import CheckResult
from bot.checks.kinds import registry
from bot.config.apps_file import AppConfig, HostConfig
from bot.ports import HostRunner
from bot.steps import signals
from bot.steps.redeploy import CLOCK, parse_clock
from bot.watch.model import Sample, Tick
from bot.workflow.errors import HostError


async def host_offset(runner: HostRunner, host: HostConfig) -> int:
    """The host's UTC offset, for its log lines' local timestamps (0 when it cannot tell)."""
    try:
        result = await runner.run(host.name, CLOCK, timeout=30)
    except HostError:
        return 0
    parsed = parse_clock(result.output) if result.ok else None
    return parsed[1] if parsed else 0


def _sample(tick: Tick, r: CheckResult) -> None:
    tick.samples.append(Sample(url=r.query, host=r.host, ok=r.passed, status=r.status,
                               latency_ms=r.value, detail=r.reason))  # fmt: skip


def _logs(tick: Tick, r: CheckResult) -> None:
    host = r.host or r.name
    if r.value is None:  # the logs could not be read: said, and not counted as no errors
        tick.log_problems[host] = r.reason
    else:
        tick.errors[host] = int(r.value)


def _signal(tick: Tick, r: CheckResult) -> None:
    tick.signals.append(signals.fact(r))


def watched() -> tuple[str, ...]:
    """What a watch reads each tick: every kind the monitor reads each round (`Kind.rounds`),
    so a new kind is watched too; not the smoke tests, which act on the app."""
    return tuple(name for name, k in registry().items() if k.rounds)


# Where each kind's result goes in the tick (what `judge` reads); any other is a signal.
INTO_TICK: dict[str, Callable[[Tick, CheckResult], None]] = {"health": _sample, "logs": _logs}


async def one_round(
    n: int,
    worker: str,
    app: AppConfig,
    runner: HostRunner,
    since: datetime,
    offsets: dict[str, int],
    at: datetime,
    version: str | None = None,
) -> Tick:
    async with aiohttp.ClientSession() as session:
        reading = signals.Reading(runner, since, version, offsets, session)
        results = await signals.read(signals.app_checks(app, reading, watched()), since)
    tick = Tick(n=n, at=at, worker=worker)
    for r in results:
        INTO_TICK.get(r.provider, _signal)(tick, r)
    return tick
