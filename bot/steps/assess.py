"""Step 1, Assess: what is deployed, what to go back to, what lies between, any migrations."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from bot.steps import code, database
from bot.steps.assess_reads import read_hosts, warm_hosts
from bot.steps.context import Outcome, StepContext
from bot.steps.signal_reads import before_rollback
from bot.workflow.errors import HostError, StepError
from bot.workflow.facts import AssessFacts
from bot.workflow.messages import Emphasis, Inline, Mark, Status
from bot.workflow.model import Criterion, HostResult, StepId
from bot.workflow.plan import changes_since


async def run(ctx: StepContext) -> Outcome:
    # The clone's fetch needs the repository, not the versions: it runs beside the hosts' reads
    # (in a thread of the worker), and the versions are resolved in it once both are in.
    sync = asyncio.create_task(code.synced_repo(ctx))
    try:
        return await _assess(ctx, sync)
    finally:
        # Not cancelled: its git runs in a thread that would go on in the clone (a plan's
        # scratch clone is deleted once the step ends). When the hosts could not be read, their
        # error is the one raised, as before; a sync error is raised where its result is used.
        with contextlib.suppress(Exception):
            await sync


async def _assess(ctx: StepContext, sync: asyncio.Task[code.Synced]) -> Outcome:
    results, current, kept = await read_hosts(ctx)
    hosts: dict[str, HostResult] = {}
    versions: dict[str, str] = {}
    for name, res in results.items():
        if isinstance(res, HostError):
            hosts[name] = HostResult(host=name, ok=False, summary=res.what, detail=res.hint)
        elif not res.ok:
            hosts[name] = HostResult(
                host=name,
                ok=False,
                summary=f"version command failed ({res.status})",
                detail=res.tail(),
            )
        else:
            version = (res.output.strip().splitlines() or ["?"])[-1].strip()
            versions[name] = version
            hosts[name] = HostResult(host=name, ok=True, summary=f"on {version}")
    failed = [h for h in hosts.values() if not h.ok]
    if failed:
        err = StepError(
            "cannot read the deployed version on " + ", ".join(h.host for h in failed),
            host=failed[0].host if len(failed) == 1 else None,
            hint="; ".join(f"{h.host}: {h.summary}" for h in failed)
            + ". Fix the connection, then Retry — or Abort.",
        )
        err.hosts = hosts
        raise err
    deployed, _ = Counter(versions.values()).most_common(1)[0]
    facts = await code.assess_code(ctx, deployed, await sync)
    facts.deployed_by_host = versions
    if ctx.app.deploy.releases:
        facts.kept_releases = kept
        facts.warm_hosts = warm_hosts(kept, facts.target, facts.target_sha)
    ctx.incident.facts.assess = facts
    if ctx.app.database is not None:
        facts = facts.with_db(await database.assess_db(ctx, facts.target, read=current))
    migrations = facts.migrations
    skip: tuple[StepId, ...] = ()
    criteria: dict[Criterion, bool] = {}
    if not migrations:
        skip = (StepId.DB_PREPARE, StepId.DB_ROLLBACK)
        criteria[Criterion.DATABASE] = True
    if ctx.facts.plan is not None:
        facts.plan_changes = changes_since(ctx.facts.plan, facts)
        await ctx.say(*_plan_text(ctx.incident.id, facts.plan_changes))
    await ctx.say(Emphasis("Assessment"), "\n" + _summary_text(facts))
    facts.resources = await before_rollback(ctx)
    summary = f"{deployed} deployed; go back to {facts.target}; " + (
        f"{len(migrations)} migration(s) to undo" if migrations else "no migrations"
    )
    return Outcome(summary=summary, hosts=hosts, facts=facts, criteria=criteria, skip=skip)


def _plan_text(plan_id: str, changes: list[str]) -> tuple[Inline, ...]:
    if not changes:
        return (
            Mark(Status.OK),
            f" Nothing plan `{plan_id}` depended on has changed (deployed "
            "versions, the target's commit, the database revision).",
        )
    return (
        Mark(Status.WARN),
        f" Changed since plan `{plan_id}` was made: "
        + "; ".join(changes)
        + ". Nothing has run yet: read the assessment below before you decide.",
    )


def _summary_text(facts: AssessFacts) -> str:
    lines: list[str] = []
    versions = facts.deployed_by_host
    mixed = len(set(versions.values())) > 1
    on = ", ".join(f"{h} on `{v}`" for h, v in sorted(versions.items()))
    lines.append(f"• Deployed now: `{facts.deployed}`" + (f" (mixed: {on})" if mixed else ""))
    lines.append(f"• Last good version: `{facts.target}`")
    if facts.kept_releases:
        warm = ", ".join(facts.warm_hosts) or "none"
        cold = [h for h in sorted(facts.kept_releases) if h not in facts.warm_hosts]
        lines.append(
            f"• Kept warm on: {warm} (switch and restart)"
            + (f"; full deploy on: {', '.join(cold)}" if cold else "")
        )
    count = facts.commit_count
    lines.append(f"• {count} commit(s) between them:")
    shown = [f"`{c.short}` {c.subject}" for c in facts.commits[:15]]
    lines.extend(f"    {s}" for s in shown)
    if count > len(shown):
        lines.append(f"    … and {count - len(shown)} more")
    if facts.migrations:
        lines.append(f"• Migrations: {len(facts.migrations)} to undo")
        for m in facts.migrations:
            flag = " ⚠️ irreversible" if m.irreversible else ""
            lines.append(f"    `{m.revision}` → `{m.down_revision}`: {m.message}{flag}")
    else:
        lines.append("• Migrations: none")
    if facts.code_method_recommended:
        lines.append(
            f"• Code rollback: {facts.code_method_recommended} recommended — "
            f"{facts.code_method_reason}"
        )
    return "\n".join(lines)
