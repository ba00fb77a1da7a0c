"""The signals as Assess, Verify and the monitor read them (the seam is `bot.steps.signals`).

Assess reads each host's resource usage with the bad version running (the "before" of the
rollback; never fatal). Verify judges every signal after health, logs and smoke, re-reading
what does not pass for up to `verify.health_timeout`: a failed or inconclusive one then fails
it. The monitor reads them every round: a round with a failed or inconclusive signal is a
failing round, and `failure_streak` of them in a row alert, as probes do.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from bot.checks import Check, CheckResult
from bot.steps import signals
from bot.steps.context import StepContext
from bot.workflow.facts import ResourceFact
from bot.workflow.messages import Emphasis, Mark, Status, words


def _checks(ctx: StepContext, kinds: tuple[str, ...] = ("metrics", "resources")) -> list[Check]:
    """The app's checks of these kinds from the registry, read over the step's SSH sessions."""
    reading = signals.Reading(ctx.hosts, datetime.now(UTC), ctx.incident.target)
    return signals.app_checks(ctx.app, reading, kinds)


async def before_rollback(ctx: StepContext) -> list[ResourceFact]:
    """Each host's resource usage now, before anything changes (empty without `resources:`)."""
    checks = _checks(ctx, ("resources",))
    if not checks:
        return []
    found = [signals.resource_fact(r) for r in await signals.read(checks, None)]
    # One line: where a short view shows only the first one, the figures are in it.
    await ctx.say(Emphasis("Resource usage before the rollback:"),
                  " " + "; ".join(signals.usage_line(f) for f in found))  # fmt: skip
    return found


async def verify_signals(ctx: StepContext) -> list[str]:
    """Judge every signal once; what fails Verify, in words (empty: all passed, or none set)."""
    checks = _checks(ctx)
    if not checks:
        return []
    results = await _until_passing(ctx, checks)
    found = ctx.facts.verify
    found.signals = [signals.fact(r) for r in results if not signals.is_resources(r)]
    found.resources = [signals.resource_fact(r) for r in results if signals.is_resources(r)]
    await ctx.say(Emphasis("Signals"), "\n" + "\n".join(signals.line(r) for r in results))
    return [f"signal {r.summary()}" for r in signals.trouble(results)]


async def _until_passing(ctx: StepContext, checks: list[Check]) -> list[CheckResult]:
    """Read, and re-read what does not pass every `health_interval` for up to `health_timeout`:
    right after the restart a rate's window still holds the bad version's errors. What still
    does not pass then is the answer."""
    cfg, deployed_at = ctx.app.verify, signals.deploy_time(ctx.incident.baseline)
    started = time.monotonic()
    results = await signals.read(checks, deployed_at)
    try:
        while signals.trouble(results) and time.monotonic() - started < cfg.health_timeout:
            so_far = int((time.monotonic() - started) // 5 * 5)
            names = ", ".join(r.name for r in signals.trouble(results)[:3])
            await ctx.waiting("signals", f"{names} not passing yet — re-reading, "
                                         f"{so_far} s of {cfg.health_timeout:.0f} s")  # fmt: skip
            await asyncio.sleep(cfg.health_interval)
            results = await signals.read(checks, deployed_at)
    finally:
        await ctx.waiting("signals", None)
    return results


class MonitorSignals:
    """The signals over the monitoring rounds: the last readings and the failing streak."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.checks = _checks(ctx)
        self.deployed_at = signals.deploy_time(ctx.incident.baseline)
        self.results: list[CheckResult] = []
        self.streak = 0  # failing rounds in a row, now
        self.failed_rounds = 0
        self.alerted = False
        self.alerts = 0

    async def round(self) -> None:
        if not self.checks:
            return
        self.results = await signals.read(self.checks, self.deployed_at)
        bad = signals.trouble(self.results)
        self.streak = self.streak + 1 if bad else 0
        self.failed_rounds += bool(bad)
        if bad and self.streak == self.ctx.app.monitor.failure_streak:
            self.alerted = True
            self.alerts += 1
            said = "; ".join(r.summary() for r in bad[:4])
            text = words(
                f"{self.ctx.app.name}: signals failing {self.streak} rounds in a row during "
                f"monitoring after the rollback ({said})."
            )
            await self.ctx.notifier.alert(self.ctx.incident, text)
        elif not bad and self.alerted:
            self.alerted = False
            await self.ctx.say(Mark(Status.OK), " Every signal passes again.")

    def summary_lines(self) -> list[str]:
        """Each signal with its value and verdict; each host's usage now and before."""
        before = {f.host: f for f in self.ctx.facts.assess.resources}
        out: list[str] = []
        for r in self.results:
            if not signals.is_resources(r):
                out.append(f"• {signals.line(r)}")
                continue
            now = signals.resource_fact(r)
            was = before.get(now.host)
            then = f" (before the rollback: {signals.usage_line(was)})" if was else ""
            out.append(f"• {signals.MARKS[r.verdict]} {signals.usage_line(now)}{then}")
        return out

    def problems(self) -> list[str]:
        """What still fails at the end: the streak reached, with each bad signal."""
        if self.streak < self.ctx.app.monitor.failure_streak:
            return []
        return [f"signal {r.summary()}" for r in signals.trouble(self.results)]
