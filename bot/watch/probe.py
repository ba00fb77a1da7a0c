"""One round of a watch: every health URL once, the error lines in each host's logs, and the
team's signals: the `metrics:` queries, and each host's `resources:` over the same runner."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import aiohttp

from bot.checks import health
from bot.checks.logs import lines_since
from bot.config.apps_file import AppConfig, HostConfig
from bot.ports import HostRunner
from bot.steps import signals
from bot.steps.redeploy import CLOCK, parse_clock
from bot.steps.verify import since_value
from bot.watch.model import Sample, Tick
from bot.workflow.errors import HostError, UserFacingError
from runners import templates


async def probe_urls(session: aiohttp.ClientSession, app: AppConfig) -> list[Sample]:
    todo = health.targets(app)
    return [
        Sample(
            url=p.url,
            host=p.host,
            ok=p.ok,
            status=p.status,
            latency_ms=round(p.latency_ms, 2) if p.status is not None else None,
            detail=p.describe(),
        )
        for p in await health.probe_all(session, todo)
    ]


async def host_offset(runner: HostRunner, host: HostConfig) -> int:
    """The host's UTC offset, for its log lines' local timestamps (0 when it cannot tell)."""
    try:
        result = await runner.run(host.name, CLOCK, timeout=30)
    except HostError:
        return 0
    parsed = parse_clock(result.output) if result.ok else None
    return parsed[1] if parsed else 0


async def error_lines(
    runner: HostRunner, app: AppConfig, host: HostConfig, since: datetime, offset: int
) -> int | str:
    """Lines matching `logs.error_pattern` written since `since`; a string says what failed."""
    try:
        cmd = templates.build(
            app, host, "logs", since=since_value(app.deploy.strategy, since, offset)
        )
    except UserFacingError as exc:
        return str(exc)
    if cmd is None:
        return "no `logs` command configured"
    try:
        result = await runner.run(host.name, cmd, timeout=min(app.deploy.timeout, 60))
    except HostError as exc:
        return str(exc)
    if not result.ok:
        return f"`logs` failed ({result.status})"
    lines, _ = lines_since(result.output.splitlines(), since, offset)
    pattern = re.compile(app.logs.error_pattern)
    return sum(1 for line in lines if pattern.search(line))


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
        samples, counts, metrics = await asyncio.gather(
            probe_urls(session, app),
            asyncio.gather(
                *(error_lines(runner, app, h, since, offsets.get(h.name, 0)) for h in app.hosts)
            ),
            signals.read(
                signals.metric_checks(app, version) + signals.resource_checks(app, runner), since
            ),
        )
    tick = Tick(n=n, at=at, worker=worker, samples=samples)
    tick.signals = [signals.fact(r) for r in metrics]
    for host, count in zip(app.hosts, counts, strict=True):
        if isinstance(count, int):
            tick.errors[host.name] = count
        else:
            tick.log_problems[host.name] = count
    return tick
