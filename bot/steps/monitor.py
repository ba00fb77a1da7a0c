"""Step 6 of the runbook, Monitor: every round, every check the registry reads in rounds
(`Kind.rounds`: health URLs, each host's logs, the team's metrics, resource usage; not the smoke
tests), for the set time.

Each kind is read by its own reader, the logs over one session per host kept for the whole
window (`monitor_logs`). The results go where the monitor's facts keep them: a health URL's
availability and latency p50/p95 (`_UrlStats`), a host's new error lines, and every other kind
as a signal (`MonitorSignals`: a failed or inconclusive one is a failing round). The parent
message shows the figures live; the thread gets one summary per `summary_every`, and a failing
streak alerts the thread and the stakeholders at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

import aiohttp

from bot.checks import CheckResult, health
from bot.checks.logs import SHOWN_MATCHES
from bot.steps import signals
from bot.steps.context import Outcome, StepContext
from bot.steps.monitor_logs import KeptSessions, reads_for
from bot.steps.signal_reads import MonitorSignals, reading
from bot.steps.signals import Group, fact, is_resources, resource_fact
from bot.workflow.baseline import compare
from bot.workflow.errors import StepError
from bot.workflow.facts import MonitorFacts, UrlFigures
from bot.workflow.messages import CodeBlock, Emphasis, Mark, Message, Status, message, words
from bot.workflow.model import Criterion
from runners.strategies import strategy


@dataclass
class _UrlStats:
    url: str
    host: str | None
    probes: int = 0
    ok: int = 0
    streak: int = 0  # consecutive failed probes, now
    worst_streak: int = 0
    latencies: list[float] = field(default_factory=list)
    last: str = ""

    def add(self, r: CheckResult) -> None:
        """One probe's reading, as the health check's typed result (`health.probe_result`)."""
        self.probes += 1
        self.ok += r.passed
        self.streak = 0 if r.passed else self.streak + 1
        self.worst_streak = max(self.worst_streak, self.streak)
        if r.status is not None and r.value is not None:
            self.latencies.append(r.value)
        self.last = r.reason

    def figures(self) -> UrlFigures:
        p50 = health.percentile(self.latencies, 50)
        p95 = health.percentile(self.latencies, 95)
        return UrlFigures(
            url=self.url,
            host=self.host,
            probes=self.probes,
            ok=self.ok,
            availability=round(100 * self.ok / self.probes, 2) if self.probes else None,
            p50_ms=round(p50, 1) if p50 is not None else None,
            p95_ms=round(p95, 1) if p95 is not None else None,
            streak=self.streak,
            worst_streak=self.worst_streak,
            last=self.last,
        )


class _Monitor:
    def __init__(self, ctx: StepContext, found: list[Group]) -> None:
        self.ctx = ctx
        self.cfg = ctx.app.monitor
        self.groups = found
        probes = [c for g in found if g.name == "health" for c in g.checks]
        self.stats = [_UrlStats(c.query, getattr(c, "host", None)) for c in probes]
        self.hosts = strategy(ctx.app.deploy.strategy).deploy_hosts(ctx.app)
        self.errors: dict[str, set[str]] = {h.name: set() for h in self.hosts}
        self.log_problems: dict[str, str] = {}
        self.deployed_at = signals.deploy_time(ctx.incident.baseline)
        self.started = datetime.now(UTC)
        self.rounds = 0
        self.alerts = 0
        self.alerted: set[tuple[str, str | None]] = set()
        self.elapsed = 0.0
        self.signals = MonitorSignals(ctx)

    def figures(self, done: bool = False) -> MonitorFacts:
        probes = sum(s.probes for s in self.stats)
        ok = sum(s.ok for s in self.stats)
        availability = round(100 * ok / probes, 2) if probes else None
        p95 = health.percentile([ms for s in self.stats for ms in s.latencies], 95)
        return MonitorFacts(
            started_at=self.started.isoformat(),
            updated_at=datetime.now(UTC).isoformat(),
            duration=self.cfg.duration,
            interval=self.cfg.interval,
            elapsed=round(self.elapsed, 1),
            rounds=self.rounds,
            done=done,
            availability=availability,
            p95_ms=round(p95, 1) if p95 is not None else None,
            # Against the figures of the version before the bad deploy, when a watch had them.
            vs_baseline=compare(self.ctx.incident.baseline, p95, availability),
            error_count=sum(len(v) for v in self.errors.values()),
            errors={h: len(v) for h, v in self.errors.items()},
            alerts=self.alerts + self.signals.alerts,
            urls=[s.figures() for s in self.stats],
            signals=[fact(r) for r in self.signals.results if not is_resources(r)],
            resources=[resource_fact(r) for r in self.signals.results if is_resources(r)],
            signal_streak=self.signals.streak,
            signal_rounds_failed=self.signals.failed_rounds,
        )

    async def round(self) -> None:
        """Every kind read at once, each by its own reader; each result where it is kept."""
        found = await signals.read_groups(self.groups, self.deployed_at)
        theirs: list[CheckResult] = []
        for group, results in zip(self.groups, found, strict=True):
            if into := self.INTO.get(group.name):
                await into(self, results)
            else:
                theirs += results
        await self.signals.round(theirs)

    async def logs(self, results: list[CheckResult]) -> None:
        """Each host's error lines since the window began: the new ones are said."""
        for r in results:
            host = r.host or r.name
            if r.value is None:  # not read: said, never counted as no errors
                self.log_problems[host] = r.reason
                continue
            self.log_problems.pop(host, None)
            seen = self.errors.setdefault(host, set())
            new = [m for m in r.lines if m not in seen]
            if new:
                seen.update(new)
                shown = "\n".join(line[:300] for line in new[:SHOWN_MATCHES])
                await self.ctx.say(
                    Mark(Status.WARN),
                    f" {len(new)} new error line(s) on {host}:",
                    CodeBlock(shown),
                )

    async def probe(self, results: list[CheckResult]) -> None:
        """Each health URL's reading, its streak alerted once, its recovery said once."""
        for stats, r in zip(self.stats, results, strict=True):
            stats.add(r)
            key = (stats.url, stats.host)
            if stats.streak == self.cfg.failure_streak:
                self.alerted.add(key)
                await self.alert(stats)
            elif r.passed and key in self.alerted:
                # Recovery is told once, on the first good probe after an alerted streak.
                self.alerted.discard(key)
                await self.ctx.say(Mark(Status.OK), f" {_where(stats)} answers again.")

    async def alert(self, stats: _UrlStats) -> None:
        self.alerts += 1
        text = words(
            f"{self.ctx.app.name}: {_where(stats)} failed "
            f"{stats.streak} probes in a row during monitoring after the rollback "
            f"({stats.last})."
        )
        # The port's `alert` posts in the thread and to every stakeholder channel at once.
        await self.ctx.notifier.alert(self.ctx.incident, text)

    def summary(self, *, done: bool = False) -> Message:
        f = self.figures()
        lines = [
            f" {_mmss(self.elapsed)} of {_mmss(self.cfg.duration)}: "
            f"availability {_pct(f.availability)}, {f.error_count} error line(s)"
        ]
        for u in f.urls:
            lines.append(
                f"• {u.url}: {_pct(u.availability)} up, p50 {_ms(u.p50_ms)}, p95 {_ms(u.p95_ms)}"
            )
        if f.vs_baseline:
            lines.append(f"• {f.vs_baseline}")
        lines += self.signals.summary_lines()
        title = Emphasis("Monitoring done" if done else "Monitoring")
        return message(title, "\n".join(lines))

    # Where a kind's results go, for the kinds with figures of their own in the monitor's facts;
    # every other kind is a signal.
    INTO: ClassVar[dict[str, Callable[[_Monitor, list[CheckResult]], Awaitable[None]]]] = {
        "health": probe,
        "logs": logs,
    }

    async def run(self) -> None:
        # The window starts here, when Monitor runs: after Verify ended, so after the last host
        # was verified (each host is checked as it comes back, and Redeploy ends only once every
        # host's checks have ended; Verify then checks what is left).
        start = time.monotonic()
        end = start + self.cfg.duration
        next_summary = start + self.cfg.summary_every
        last = False
        while True:
            began = time.monotonic()
            await self.round()
            self.rounds += 1
            self.elapsed = time.monotonic() - start
            self.ctx.incident.facts.monitor = self.figures()
            await self.ctx.notifier.update_parent(self.ctx.incident)
            await self.ctx.heartbeat()
            if last:
                break
            if self.elapsed < self.cfg.duration and time.monotonic() >= next_summary:
                await self.ctx.notifier.say(self.ctx.incident, self.summary())
                next_summary += self.cfg.summary_every
            now = time.monotonic()
            wait = max(self.cfg.interval - (now - began), 0.0)
            # The round that starts at the window's end is the last one, or the round right
            # after this one if the window ended during it: the logs are read up to the
            # window's end, and no round starts after it.
            last = now + wait >= end
            await asyncio.sleep(min(wait, max(end - now, 0.0)))


def _where(stats: _UrlStats) -> str:
    return f"{stats.url} ({stats.host})" if stats.host else stats.url


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}%"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _mmss(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


async def run(ctx: StepContext) -> Outcome:
    cfg = ctx.app.monitor
    kept = KeptSessions(ctx, reads_for(cfg.duration, cfg.interval))  # one session per host
    try:
        async with aiohttp.ClientSession() as session:
            found = signals.groups(
                ctx.app, reading(ctx, session=session, kept=kept), lambda k: k.rounds
            )
            for g in found:
                if g.refused:
                    raise StepError(g.refused, hint=f"Fix `{g.name}:` in the apps file.")
            mon = _Monitor(ctx, found)
            await ctx.say(
                f"Monitoring for {_mmss(cfg.duration)}: "
                f"{len(mon.stats)} URL(s) every {cfg.interval:g}s, logs of "
                f"{len(ctx.app.hosts)} host(s)."
            )
            await mon.run()
    finally:
        await kept.close()
    ctx.incident.facts.monitor = mon.figures(done=True)
    figures = ctx.facts.monitor
    await ctx.notifier.say(ctx.incident, mon.summary(done=True))
    failing = [s for s in mon.stats if s.streak >= ctx.app.monitor.failure_streak]
    problems = [f"{_where(s)} still failing ({s.last})" for s in failing]
    problems += [f"{n} new error line(s) on {h}" for h, n in figures.errors.items() if n]
    problems += [f"logs on {h}: {why}" for h, why in mon.log_problems.items()]
    problems += mon.signals.problems()
    if problems:
        raise StepError(
            "Monitoring found problems: " + "; ".join(problems[:6]),
            hint="Retry monitors again from now; Abort ends the incident as not recovered.",
        )
    return Outcome(
        summary=(
            f"{_mmss(mon.elapsed)} monitored: availability {_pct(figures.availability)}, "
            f"{figures.error_count} error line(s), {figures.alerts} alert(s)"
            + (f"; {figures.vs_baseline}" if figures.vs_baseline else "")
        ),
        facts=figures,
        criteria={Criterion.MONITORED: True},
    )
