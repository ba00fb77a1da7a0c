"""Step 1, Assess: what is deployed, what to go back to, what lies between, any migrations."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bot.errors import HostError, StepError
from bot.plan.model import PlanBasis, changes_since
from bot.steps import code, database
from bot.steps.context import Outcome, StepContext
from bot.workflow.model import Criterion, HostResult, StepId


async def run(ctx: StepContext) -> Outcome:
    results = await ctx.run_all("version")
    hosts: dict[str, HostResult] = {}
    versions: dict[str, str] = {}
    for name, res in results.items():
        if isinstance(res, HostError):
            hosts[name] = HostResult(host=name, ok=False, summary=res.what, detail=res.hint)
        elif not res.ok:
            hosts[name] = HostResult(
                host=name,
                ok=False,
                summary=f"version command failed ({res.exit_status})",
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
    facts: dict[str, Any] = {"deployed": deployed, "deployed_by_host": versions}
    facts.update(await code.assess_code(ctx, deployed))
    ctx.incident.facts.update(facts)
    target = str(facts["target"])
    migrations: list[dict[str, Any]] = []
    if ctx.app.database is not None:
        db = await database.assess_db(ctx, target)
        facts.update(db)
        migrations = list(db.get("migrations") or [])
    facts["migrations"] = migrations
    skip: tuple[StepId, ...] = ()
    criteria: dict[Criterion, bool] = {}
    if not migrations:
        skip = (StepId.DB_PREPARE, StepId.DB_ROLLBACK)
        criteria[Criterion.DATABASE] = True
    if "plan" in ctx.facts:
        facts["plan_changes"] = changes_since(PlanBasis.model_validate(ctx.facts["plan"]), facts)
        await ctx.say(_plan_text(ctx.incident.id, facts["plan_changes"]))
    await ctx.say(_summary_text(facts, versions))
    summary = f"{deployed} deployed; go back to {target}; " + (
        f"{len(migrations)} migration(s) to undo" if migrations else "no migrations"
    )
    return Outcome(summary=summary, hosts=hosts, facts=facts, criteria=criteria, skip=skip)


def _plan_text(plan_id: str, changes: list[str]) -> str:
    if not changes:
        return (
            f":white_check_mark: Nothing plan `{plan_id}` depended on has changed (deployed "
            "versions, the target's commit, the database revision)."
        )
    return (
        f":warning: *Changed since plan `{plan_id}` was made:* "
        + "; ".join(changes)
        + ". Nothing has run yet: read the assessment below before you decide."
    )


def _summary_text(facts: dict[str, Any], versions: dict[str, str]) -> str:
    lines = ["*Assessment*"]
    mixed = len(set(versions.values())) > 1
    on = ", ".join(f"{h} on `{v}`" for h, v in sorted(versions.items()))
    lines.append(f"• Deployed now: `{facts['deployed']}`" + (f" (mixed: {on})" if mixed else ""))
    lines.append(f"• Last good version: `{facts['target']}`")
    commits = facts.get("commits") or []
    count = facts.get("commit_count", len(commits))
    lines.append(f"• {count} commit(s) between them:")
    shown = [f"`{c.get('short', '')}` {c.get('subject', '')}" for c in commits[:15]]
    lines.extend(f"    {s}" for s in shown)
    if count > len(shown):
        lines.append(f"    … and {count - len(shown)} more")
    migrations = facts.get("migrations") or []
    if migrations:
        lines.append(f"• Migrations: {len(migrations)} to undo")
        for m in migrations:
            flag = " :warning: irreversible" if m.get("irreversible") else ""
            lines.append(
                f"    `{m.get('revision')}` → `{m.get('down_revision')}`: {m.get('message')}{flag}"
            )
    else:
        lines.append("• Migrations: none")
    if facts.get("code_method_recommended"):
        lines.append(
            f"• Code rollback: {facts['code_method_recommended']} recommended — "
            f"{facts.get('code_method_reason', '')}"
        )
    return "\n".join(lines)
