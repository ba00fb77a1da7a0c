"""Step 5 of the runbook, Verify: every check the registry gives for the app, each kind read
by its own policy (`bot.checks.kinds`): health URLs, the team's metrics and resource usage are
read again while they do not pass, for up to `verify.health_timeout` (the app starting, a rate's
window still holding the bad version's errors); then the logs since the restart are read once
and the smoke tests run once, as one script on their host. A failed or inconclusive check fails
Verify (Retry/Abort), saying which and why. What each kind's results look like in the thread is
with its kind (`bot.checks.kinds.Words`), or in `verify_words` for a kind with none.

Only log lines written since the restart count, so the broken version's errors do not fail the
version that replaced it. The `{since}` placeholder of the `logs` command is the restart time
as the host's own clock gave it: host-local `YYYY-MM-DD HH:MM:SS` for systemd (what
`journalctl --since` reads everywhere), RFC 3339 in UTC for the rest (`docker compose logs
--since`). On top of that, lines that start with an ISO 8601 timestamp are filtered by it, which
covers a `logs` command without `{since}`, such as `tail -n 200 app.log` (`bot.checks.logs`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

import aiohttp

from bot.checks import CheckResult, health
from bot.config.apps_file import AppConfig, HostConfig
from bot.steps import signals
from bot.steps.context import Outcome, StepContext
from bot.steps.host_checks import Early, reused
from bot.steps.signal_reads import reading
from bot.steps.signals import Group
from bot.steps.verify_words import words
from bot.workflow.baseline import compare
from bot.workflow.errors import StepError
from bot.workflow.messages import Block, Emphasis, Inline
from bot.workflow.model import Criterion, HostResult
from runners import templates
from runners.strategies import strategy

# The runbook's criteria Verify decides, each by the kind of check of the same name.
CRITERIA = (Criterion.HEALTH, Criterion.LOGS, Criterion.SMOKE)

# ---- logs -----------------------------------------------------------------------------------


def since_value(name: str, at: datetime, utc_offset: int) -> str:
    """`{since}` for the logs command of strategy `name` (see the module's doc)."""
    return strategy(name).since(at, utc_offset)


def logs_command(app: AppConfig, host: HostConfig, since: datetime, utc_offset: int) -> str | None:
    """The `logs` command for `host` since `since`, as the plan lists the monitor's reads."""
    since_text = since_value(app.deploy.strategy, since, utc_offset)
    return templates.build(app, host, "logs", since=since_text)


# ---- verify ---------------------------------------------------------------------------------


@dataclass
class Judged:
    """One kind's checks as Verify read them."""

    group: Group
    results: list[CheckResult]  # read now
    reused: list[CheckResult] = field(default_factory=list)  # read as each host came back

    @property
    def every(self) -> list[CheckResult]:
        return self.reused + self.results

    @property
    def kind(self) -> str:
        return self.group.name

    @property
    def problem(self) -> str:
        """Why the kind could not be judged at all: refused, or none configured where some are
        required (`Kind.missing`)."""
        missing = self.group.kind.missing if not self.group.checks and not self.reused else ""
        return self.group.refused or missing

    def passes(self) -> bool:
        return not self.problem and bool(self.every) and all(r.passed for r in self.every)


async def settle(ctx: StepContext, found: list[Group]) -> list[Judged]:
    """Read every check of these kinds; re-read what does not pass every `health_interval` for
    up to `health_timeout` (one that passed is not asked again), saying on the status line
    what it waits for. What still does not pass then is the answer."""
    cfg, deployed_at = ctx.app.verify, signals.deploy_time(ctx.incident.baseline)
    started = time.monotonic()
    results = await signals.read_groups(found, deployed_at)
    said: set[str] = set()  # the status lines shown
    try:
        while True:
            todo = [[i for i, r in enumerate(rs) if not r.passed] for rs in results]
            elapsed = time.monotonic() - started
            if not any(todo) or elapsed + cfg.health_interval > cfg.health_timeout:
                break
            # Whole multiples of 5 s: the line changes (and is redrawn) at most every 5 s.
            so_far = f"{int(elapsed // 5 * 5)} s of {cfg.health_timeout:.0f} s"
            pairs = list(zip(found, todo, strict=True))
            failing = [(g.name, [results[k][i] for i in idx]) for k, (g, idx) in enumerate(pairs)]
            said = await _say_waiting(ctx, _waiting(failing, so_far), said)
            await ctx.heartbeat()
            await asyncio.sleep(cfg.health_interval)
            again = [Group(g.kind, [g.checks[i] for i in idx]) for g, idx in pairs]
            fresh = await signals.read_groups(again, deployed_at)
            for rs, idx, new in zip(results, todo, fresh, strict=True):
                for i, r in zip(idx, new, strict=True):
                    rs[i] = r
    finally:
        await _say_waiting(ctx, {}, said)
    return [Judged(g, rs) for g, rs in zip(found, results, strict=True)]


def _waiting(failing: list[tuple[str, list[CheckResult]]], so_far: str) -> dict[str, str]:
    """The status lines while checks are read again: one per `Words.status`."""
    by: dict[str, tuple[list[str], str]] = {}
    for kind, results in failing:
        w = words(kind)
        said, _ = by.setdefault(w.status, ([], kind))
        said += [w.waiting(r) for r in results]
    return {key: words(kind).wait_line(said, so_far) for key, (said, kind) in by.items() if said}


async def _say_waiting(ctx: StepContext, lines: dict[str, str], shown: set[str]) -> set[str]:
    """Shows `lines` on the status line, and takes off those shown before that are not."""
    for key in shown - set(lines):
        await ctx.waiting(key, None)
    for key, text in lines.items():
        await ctx.waiting(key, text)
    return set(lines)


async def _show(ctx: StepContext, judged: list[Judged], tails: dict[str, list[str]]) -> None:
    """Each kind's section (kinds of one title share one), in the registry's order."""
    sections: dict[str, list[Block | Inline]] = {}
    for j in judged:
        w = words(j.kind)
        if not j.results and not j.problem:
            continue  # none of this kind, and none needed
        parts = sections.setdefault(w.title, [])
        if j.problem:
            parts.append(f"\n❌ {j.problem}")
        for r in j.results:
            parts += w.line(r)
    for title, parts in sections.items():
        tail = [f"\n{line}" for line in tails.get(title, [])]
        await ctx.say(Emphasis(title), *parts, *tail)


def _vs_baseline(ctx: StepContext, judged: list[Judged]) -> dict[str, list[str]]:
    """The health URLs' p95 latency and availability against the version before the bad
    deploy, when a watch measured it: kept in the facts and said under the health checks."""
    probes = [r for j in judged if j.kind == "health" for r in j.every]
    ok = [r.value for r in probes if r.passed and r.value is not None]
    p95 = health.percentile(ok, 95)
    availability = round(100 * len(ok) / len(probes), 2) if probes else None
    vs = compare(ctx.incident.baseline, p95, availability)
    if not vs:
        return {}
    ctx.facts.verify.vs_baseline = vs
    return {words("health").title: [f"Compared with before the bad deploy: {vs}"]}


def _early(early: Early, j: Judged) -> Judged:
    """`j` with what its kind's checks found as each host came back."""
    found = early.of(j.kind)
    return replace(j, reused=found) if found else j


async def _judge(ctx: StepContext, found: list[Group], early: Early) -> list[Judged]:
    """One pass over every kind: those that settle first, then those read once (logs since the
    restart, the smoke tests once the app has settled), each kind by its own reader; the
    sections of each are said as soon as they are read. What `early` holds (each host's own
    checks as it came back) is not read again, only counted."""
    first = [_early(early, j) for j in await settle(ctx, [g for g in found if g.kind.settle])]
    await _show(ctx, first, _vs_baseline(ctx, first))
    await ctx.heartbeat()
    later = [g for g in found if not g.kind.settle]
    read = await signals.read_groups(later, signals.deploy_time(ctx.incident.baseline))
    rest = [_early(early, Judged(g, rs)) for g, rs in zip(later, read, strict=True)]
    await _show(ctx, rest, {})
    order = {g.name: i for i, g in enumerate(found)}
    return sorted(first + rest, key=lambda j: order[j.kind])


def _per_host(ctx: StepContext, judged: list[Judged]) -> dict[str, HostResult]:
    out: dict[str, HostResult] = {}
    for host in ctx.app.hosts:
        bad: list[str] = []
        good: list[str] = []
        for j in judged:
            w = words(j.kind)
            here = [r for r in j.every if r.host == host.name]
            bad += [w.bad(r) for r in here if not r.passed]
            if here and w.good is not None:
                good.append(w.good(len(here)))
        summary = "; ".join(bad) if bad else ", ".join(good) or "nothing to check here"
        out[host.name] = HostResult(host=host.name, ok=not bad, summary=summary)
    return out


def _failures(judged: list[Judged]) -> list[str]:
    """What fails Verify, in words: the team's own signals first, then the runbook's checks."""
    out: list[str] = []
    for j in sorted(judged, key=lambda j: j.kind in _CRITERIA_KINDS):
        w = words(j.kind)
        if j.problem:
            out.append(f"{j.kind}: {j.problem}")
        out += [w.failure(r) for r in j.every if not r.passed]
    return out


_CRITERIA_KINDS = {c.name.lower() for c in CRITERIA}


async def run(ctx: StepContext) -> Outcome:
    # Each host's own health URLs and logs were checked as it came back (Redeploy,
    # `host_verify`): passing ones are reused, and only the rest is read here.
    early = await reused(ctx)
    async with aiohttp.ClientSession() as session:
        found = [early.without(g) for g in signals.groups(ctx.app, reading(ctx, session=session))]
        judged = await _judge(ctx, found, early)
    by_kind = {j.kind: j for j in judged}
    criteria = {c: c.name.lower() in by_kind and by_kind[c.name.lower()].passes() for c in CRITERIA}
    facts = ctx.facts.verify
    facts.checks = {c.name.lower(): ok for c, ok in criteria.items()}
    theirs = [r for j in judged if j.kind not in _CRITERIA_KINDS for r in j.every]
    facts.signals = [signals.fact(r) for r in theirs if not signals.is_resources(r)]
    facts.resources = [signals.resource_fact(r) for r in theirs if signals.is_resources(r)]
    hosts = _per_host(ctx, judged)
    if failures := _failures(judged):
        # What the checks found to show (the error lines), for the error's detail.
        matches = [line for j in judged for r in j.every for line in r.lines[:5]]
        err = StepError(
            "Verification failed: " + "; ".join(failures[:6]),
            hint="Details are above. Fix the cause, then Retry (it re-checks everything) — "
            "or Abort.",
            detail="\n".join(matches),
        )
        err.hosts = hosts
        err.criteria = dict(criteria)
        raise err
    count = {j.kind: len(j.every) for j in judged}
    return Outcome(
        summary=f"{count.get('health', 0)} health check(s) passing, no errors in logs, "
        f"{count.get('smoke', 0)} smoke test(s) ok",
        hosts=hosts,
        facts=facts,
        criteria=criteria,
    )
