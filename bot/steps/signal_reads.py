"""How the steps read the app's checks (the registry is `bot.steps.signals`, its kinds in
`bot.checks`): over the step's own runner, fenced before each command and quiet (`StepRuns`:
logs, resource usage), and its shell, fenced and shown in the thread (`StepShell`: the smoke
tests, one script per host).

Assess reads each host's resource usage with the bad version running (the "before" of the
rollback; never fatal). Verify and the monitor read every kind the registry gives (see
`bot.steps.verify` and `bot.steps.monitor`); in the monitor a round with a failed or
inconclusive signal is a failing round, and `failure_streak` of them in a row alert, as probes
do (`MonitorSignals`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from bot.checks import CheckResult
from bot.checks.kinds import Kept
from bot.ports import CommandResult, ScriptCommand
from bot.steps import signals
from bot.steps.context import StepContext
from bot.workflow.facts import ResourceFact
from bot.workflow.messages import Emphasis, Mark, Status, words

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StepRuns:
    """The step's runner for reads (logs, resource usage): fenced before each command, its
    output not streamed (the thread gets what the check found, not the whole log)."""

    ctx: StepContext

    async def run(self, host: str, command: str, *, timeout: float | None = None) -> CommandResult:
        where = self.ctx.app.host(host)
        return await self.ctx.run(where, command, timeout=timeout, stream=False)


@dataclass(frozen=True)
class StepShell:
    """The step's shell for commands that act on the app (`bot.checks.kinds.Shell`): fenced
    before each, shown in the thread, a host's commands as one script in one session."""

    ctx: StepContext

    async def script(self, host: str, commands: Sequence[str]) -> list[CommandResult]:
        where = self.ctx.app.host(host)
        ran = await self.ctx.run_script(where, [ScriptCommand(c, check=False) for c in commands])
        out: list[CommandResult] = []
        for result, command in zip(ran, commands, strict=True):
            # None: not run, as one before it went past its timeout and the script was killed.
            out.append(result or await self.ctx.run(where, command))
        return out


def reading(
    ctx: StepContext,
    *,
    session: aiohttp.ClientSession | None = None,
    kept: Kept | None = None,
) -> signals.Reading:
    """What the step's checks are built with: its runner and shell, the rollback's version,
    and since when each host's logs count: its restart when Redeploy recorded one, else every
    line the logs command returns (nothing tells the old version's lines from the new one's)."""
    redeploy = ctx.facts.redeploy
    since = {h: datetime.fromisoformat(at) for h, at in redeploy.restart_at.items() if at}
    return signals.Reading(StepRuns(ctx), EPOCH, ctx.incident.target,
                           dict(redeploy.host_utc_offset), session, since, StepShell(ctx),
                           kept)  # fmt: skip


async def before_rollback(ctx: StepContext) -> list[ResourceFact]:
    """Each host's resource usage now, before anything changes (empty without `resources:`)."""
    checks = signals.app_checks(ctx.app, reading(ctx), ("resources",))
    if not checks:
        return []
    found = [signals.resource_fact(r) for r in await signals.read(checks, None)]
    # One line: where a short view shows only the first one, the figures are in it.
    await ctx.say(Emphasis("Resource usage before the rollback:"),
                  " " + "; ".join(signals.usage_line(f) for f in found))  # fmt: skip
    return found


class MonitorSignals:
    """The signals over the monitoring rounds (every kind without a figure of its own in the
    monitor's facts): the last readings and the failing streak."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.results: list[CheckResult] = []
        self.streak = 0  # failing rounds in a row, now
        self.failed_rounds = 0
        self.alerted = False
        self.alerts = 0

    async def round(self, results: list[CheckResult]) -> None:
        """One round's readings: a failed or inconclusive one makes it a failing round."""
        self.results = results
        if not results:
            return
        bad = signals.trouble(results)
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
