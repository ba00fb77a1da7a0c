"""Step 3b, rollback: the approved method; the downgrade with `alembic downgrade`."""

from __future__ import annotations

from bot.config.apps_file import DatabaseConfig
from bot.ports import CommandResult
from bot.steps.context import Outcome, StepContext
from bot.steps.database.commands import _db, _run_on, downgrade_script, short
from bot.steps.database.restore import _restore
from bot.steps.database.revision import current_revision
from bot.workflow.errors import StepError
from bot.workflow.model import Criterion


async def rollback(ctx: StepContext) -> Outcome:
    """The approved method: `alembic downgrade`, or stop / restore / verify / start."""
    db = _db(ctx)
    if db is None:
        return Outcome(summary="No database configured: nothing to roll back")
    method = ctx.incident.db_method
    if method == "restore":
        return await _restore(ctx, db)
    if method != "downgrade":
        raise StepError(
            "no database method was approved",
            hint="Approve the downgrade or the restore first.",
        )
    return await _downgrade(ctx, db)


async def _downgrade(ctx: StepContext, db: DatabaseConfig) -> Outcome:
    host = _run_on(ctx, db)
    state = ctx.facts.database
    target, before = state.target_revision, state.current_revision
    known = {m.revision for m in state.migrations}
    known |= {r for r in (target, before) if r}
    # One script, one session: alembic current, the downgrade, alembic current again.
    script = downgrade_script(ctx.app, db, target)
    downgrade = script.lines[1].command
    read: dict[str, str | None] = {}

    async def decide(i: int, results: list[CommandResult | None]) -> bool:
        if i == 0:
            return True
        if i == 1:
            read["now"] = await current_revision(ctx, known, results[0])
            return read["now"] != target  # already there: nothing more to run
        # A failed downgrade stops the script by itself (`check`).
        return read["now"] != target

    whats = ["command"] * len(script.lines)
    results = await ctx.run_script(host, script.sent(), decide=decide, whats=whats)
    now = read["now"] if "now" in read else await current_revision(ctx, known, results[0])
    if now == target:
        # Only a crash after alembic finished gets here: the work is done, do not redo it.
        return Outcome(
            summary=f"Database already at `{short(target)}` ({target or 'base'})",
            criteria={Criterion.DATABASE: True},
            facts=ctx.facts.db.model_copy(update={"revision_after": target}),
        )
    revision = target or "base"
    backup = ctx.facts.db.backup.name if ctx.facts.db.backup else ""
    restore_hint = (
        f"Restore from the backup `{backup}` taken before this step instead."
        if backup
        else "Restore the database from a backup instead."
    )
    result = results[1] or await ctx.run(host, downgrade, timeout=db.timeout)
    result.check(
        f"`alembic downgrade {revision}`", hint=f"The database was at `{now}`. {restore_hint}"
    )
    after = await current_revision(ctx, known, results[2])
    if after != target:
        raise StepError(
            f"after the downgrade the database is at `{after or 'base'}`, not the target "
            f"`{revision}`",
            host=host.name,
            hint=restore_hint,
            detail=result.tail(),
        )
    await ctx.say(f"Database downgraded on {host.name}: `{now}` → `{revision}` (alembic current).")
    return Outcome(
        summary=f"Database downgraded {short(now)} → {short(target)}",
        criteria={Criterion.DATABASE: True},
        facts=ctx.facts.db.model_copy(update={"revision_after": target}),
    )
