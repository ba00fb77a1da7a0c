"""A host's resource usage as a check: read over the runner the monitor has, then judged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.checks.base import Check
from bot.checks.base import Ran as Ran
from bot.checks.base import Runs as Runs
from bot.checks.kinds import Site, kind
from bot.checks.resources import ResourcesConfig, ResourceUsage, command, parse
from bot.checks.result import (
    CheckResult,
    SeriesResult,
    Threshold,
    format_value,
    inconclusive,
    worst,
)
from bot.workflow.errors import HostError


def _row(label: str, value: float | None, bound: float) -> SeriesResult:
    limit = Threshold(max=bound)
    why = "" if value is not None else f"no {label} reading"
    return SeriesResult(label, value, limit.judge(value), limit, why)


def judge(host: str, usage: ResourceUsage, limits: ResourcesConfig, query: str) -> CheckResult:
    """One result per host: CPU, memory and disk each judged; the worst is the headline."""
    disk = f"disk {usage.mount}" if usage.mount else "disk"
    rows = [("CPU", usage.cpu, limits.cpu), ("memory", usage.memory, limits.memory),
            (disk, usage.disk, limits.disk)]  # fmt: skip
    series = tuple(_row(label, value, bound) for label, value, bound in rows)
    head = worst(series)
    reason = head.labels + (f": {head.reason}" if head.reason else "")  # which one is shown
    shown = ", ".join(
        f"{s.labels} {'?' if s.value is None else format_value(s.value, '%')}" for s in series
    )
    return CheckResult(f"resources on {host}", head.verdict, head.value, head.threshold, query,
                       "resources", "%", series=series, reason=reason,
                       note=f"{shown}; {usage.service()}")  # fmt: skip


@dataclass(frozen=True)
class ResourcesCheck:
    runner: Runs
    host: str
    workdir: str
    limits: ResourcesConfig
    pidfile: str = "app.pid"
    timeout: float = 20.0
    reads_the_past: bool = False

    @property
    def name(self) -> str:
        return f"resources on {self.host}"

    @property
    def query(self) -> str:
        return f"CPU, memory and disk of {self.host} (/proc, df -P {self.workdir})"

    async def measure(self, at: datetime | None = None) -> CheckResult:
        limits = Threshold(max=self.limits.cpu)
        if at is not None:
            why = "resource usage is read now only: it has no value for a past time"
            return inconclusive(self.name, limits, self.query, why, provider="resources", at=at)
        try:
            ran = await self.runner.run(self.host, command(self.workdir, self.pidfile),
                                        timeout=self.timeout)  # fmt: skip
        except HostError as exc:  # unreachable host: not a pass, and the monitor goes on
            why = f"could not read {self.host}'s resource usage: {exc}"
            return inconclusive(self.name, limits, self.query, why, provider="resources")
        usage = parse(ran.output)
        if ran.exit_status != 0 and usage.missing:
            tail = ran.output.strip().splitlines()[-1:] or ["no output"]
            why = (
                f"reading {self.host}'s resource usage failed ({ran.exit_status}): {tail[0][:160]}"
            )
            return inconclusive(self.name, limits, self.query, why, provider="resources")
        return judge(self.host, usage, self.limits, self.query)


@kind("resources", order=50)
def resource_checks(site: Site) -> list[Check]:
    """One per deploy host when `resources:` is set, read over the site's runner (no agent)."""
    limits = site.app.resources
    if limits is None:
        return []
    return [ResourcesCheck(site.runner, s.name, s.workdir, limits) for s in site.deploy_hosts]
