"""Step 3b, rollback: the approved method; the downgrade with `alembic downgrade`."""

from __future__ import annotations

from bot.config.apps_file import DatabaseConfig
from bot.ports import CommandResult
from bot.steps.context import Outcome, StepContext
from bot.steps.database.commands import (
    KeptRelease,
    _db,
    _run_on,
    current_command,
    downgrade_script,
    kept_release,
    makes_scratch_copy,
    scratch_copy,
    short,
)
from bot.steps.database.restore import _restore
from bot.steps.database.revision import current_revision
from bot.workflow.errors import StepError, UserFacingError
from bot.workflow.model import Criterion, StepId, StepStatus
from runners import releases


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


def _after_redeploy(ctx: StepContext, db: DatabaseConfig) -> KeptRelease | None:
    """Where the downgrade runs when the redeploy already ran (a release group's shared
    database, downgraded after its own app too): the kept release of the deployed version, or
    the scratch copy of its commit Prepare made, which still hold the newer revision files.
    None: before the redeploy, in the workdir."""
    if ctx.incident.step(StepId.REDEPLOY).status is not StepStatus.SUCCEEDED:
        return None
    seen = ctx.facts.assess
    deployed = seen.deployed
    host = db.run_on
    copied = makes_scratch_copy(ctx.app, [r.id for r in ctx.incident.steps])
    if not copied and not ctx.app.deploy.keeps_releases and not ctx.app.deploy.checkout:
        # No checkout (kubernetes): the redeploy changed no file where alembic runs; if its
        # alembic no longer knows the newer revision, reading `alembic current` stops the step.
        return None
    where = seen.deployed_sha if copied else ctx.app.deploy.releases
    if not deployed or not where:
        raise StepError(
            f"{ctx.app.name} is already redeployed: the workdir on {host} no longer holds the "
            "newer revision files `alembic downgrade` needs, and "
            + ("the app keeps no releases" if deployed else "the deployed version is unknown"),
            host=host,
            hint="Restore from the backup taken before the redeploy instead, or Abort.",
        )
    try:
        if copied:
            return scratch_copy(ctx.app, db, ctx.incident.id, deployed, seen.deployed_sha)
        return kept_release(ctx.app, db, deployed)
    except UserFacingError as exc:
        raise StepError(
            str(exc), host=host, hint="Restore from the backup instead, or Abort."
        ) from exc


async def _done_without_copy(
    ctx: StepContext, db: DatabaseConfig, kept: KeptRelease, known: set[str]
) -> bool:
    """A scratch copy is missing: was it removed because the downgrade had finished (a worker
    killed between that removal and the step's record)? `alembic current` in the workdir (the
    target's code, which knows the target revision) says so; anything else: no."""
    if not kept.scratch:
        return False
    host = _run_on(ctx, db)
    read = await ctx.run(host, current_command(ctx.app, db), stream=False)
    try:
        now = await current_revision(ctx, known, read) if read.ok else None
        return read.ok and now == ctx.facts.database.target_revision
    except UserFacingError:
        return False


async def _downgrade(ctx: StepContext, db: DatabaseConfig) -> Outcome:
    host = _run_on(ctx, db)
    state = ctx.facts.database
    target, before = state.target_revision, state.current_revision
    known = {m.revision for m in state.migrations}
    known |= {r for r in (target, before) if r}
    kept = _after_redeploy(ctx, db)
    # One script, one session: (the kept release's marker,) alembic current, the downgrade,
    # alembic current again.
    script = downgrade_script(ctx.app, db, target, kept)
    names = script.names
    downgrade = script.lines[names.index("downgrade")].command
    read: dict[str, str | None] = {}
    missing: list[str] = []  # the kept release, when it is not there and complete

    async def decide(i: int, results: list[CommandResult | None]) -> bool:
        what = names[i]
        if what == "current" and kept is not None:
            marker = script.result(results, "kept")
            text = marker.output.strip() if marker is not None and marker.ok else ""
            if not releases.holds(text, ctx.facts.assess.deployed_sha):
                missing.append(text)
        if missing:
            return False  # never in another directory: refused below
        if what in {"kept", "current"}:
            return True
        if what == "remove":  # the scratch copy, once the database is at the target
            if read["now"] == target:
                return True
            try:
                after = script.result(results, "after")
                return await current_revision(ctx, known, after) == target
            except UserFacingError:
                return False
        if what == "downgrade":
            read["now"] = await current_revision(ctx, known, script.result(results, "current"))
            return read["now"] != target  # already there: nothing more to run
        # A failed downgrade stops the script by itself (`check`).
        return read["now"] != target

    whats = ["command"] * len(script.lines)
    results = await ctx.run_script(host, script.sent(), decide=decide, whats=whats)
    absent = kept is not None and (missing or script.result(results, "current") is None)
    # No marker at all: a scratch copy may be gone because the downgrade finished.
    gone = absent and missing == [""]
    if gone and kept is not None and await _done_without_copy(ctx, db, kept, known):
        return Outcome(
            summary=f"Database already at `{short(target)}` ({target or 'base'})",
            criteria={Criterion.DATABASE: True},
            facts=ctx.facts.db.model_copy(update={"revision_after": target}),
        )
    if absent and kept is not None:
        marker = missing[0] if missing else ""
        raise StepError(
            f"the {kept.words} on {host.name} (`{kept.directory}`) is "
            + (
                f"at another commit (`{marker[:12]}`)"
                if marker
                else "missing or incomplete (no release marker)"
            )
            + ": `alembic downgrade` needs its newer revision files. Nothing was run",
            host=host.name,
            hint=(
                "Restore from the backup taken before the redeploy (the scratch copy is made "
                "by the database backup step, before the redeploy), or Abort."
                if kept.scratch
                else f"Put {kept.version}'s release back in `{kept.directory}` (installed, "
                "with its marker) and Retry, or Restore from the backup taken before the "
                "redeploy."
            ),
        )
    first = script.result(results, "current")
    now = read["now"] if "now" in read else await current_revision(ctx, known, first)
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
    after = await current_revision(ctx, known, script.result(results, "after"))
    if after != target:
        raise StepError(
            f"after the downgrade the database is at `{after or 'base'}`, not the target "
            f"`{revision}`",
            host=host.name,
            hint=restore_hint,
            detail=result.tail(),
        )
    where = f" in the {kept.kind} `{kept.directory}`" if kept else ""
    await ctx.say(
        f"Database downgraded on {host.name}{where}: `{now}` → `{revision}` (alembic current)."
    )
    return Outcome(
        summary=f"Database downgraded {short(now)} → {short(target)}",
        criteria={Criterion.DATABASE: True},
        facts=ctx.facts.db.model_copy(update={"revision_after": target}),
    )
