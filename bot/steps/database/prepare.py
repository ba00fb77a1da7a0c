"""Step 3a, prepare: back up, list what can be restored, and preview the downgrade SQL."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.ports import CommandResult
from bot.steps.context import Outcome, StepContext
from bot.steps.database.backup import (
    _backup_fact,
    _PrepareScript,
    listed_backups,
    own_backup,
    read_deployed_at,
    stat_backups,
)
from bot.steps.database.commands import _db, _run_on, prepare_commands, short, sql_revision
from bot.steps.database.revision import assess_db
from bot.workflow import units
from bot.workflow.errors import StepError
from bot.workflow.facts import DbFacts
from bot.workflow.messages import Mark, Status, para
from runners.alembic_output import parse_current, sql_text
from runners.backups import backup_location, parse_stat

PREVIEW_LINES = 30
PREVIEW_CHARS = 2500


def _preview(sql: str) -> str:
    lines = sql.splitlines()
    text = "\n".join(lines[:PREVIEW_LINES])[:PREVIEW_CHARS]
    if len(text) < len(sql.rstrip()):
        text += f"\n-- … trimmed: {len(lines)} lines in all, full text in the attached file"
    return text


async def _same_database(
    ctx: StepContext,
    script: _PrepareScript,
    command: str | None,
    results: list[CommandResult | None],
    at: str | None,
) -> None:
    """`alembic current` in the scratch copy reads the revision the checkout read (`at`): the
    downgrade after the redeploy, which runs there, then works on the same database."""
    copy = script.scratch
    assert copy is not None
    host = _run_on(ctx, script.db)
    read = script.result(results, "scratch current")
    if read is None and command:
        read = await ctx.run(host, command, stream=False)
    known = {m.revision for m in (script.fresh.migrations if script.fresh else [])}
    revs = parse_current(read.output, known | {r for r in (at,) if r}) if read and read.ok else []
    if read is None or not read.ok or revs != ([at] if at else []):
        seen = ", ".join(revs) or ("nothing" if read is not None and read.ok else "an error")
        raise StepError(
            f"`alembic current` in the scratch copy of {copy.version} (`{copy.directory}`) reads "
            f"{seen}, not `{at or 'base'}` as in the checkout: the downgrade after the redeploy "
            "runs there and would not work on the same database",
            host=host.name,
            hint="The copy holds the commit's tracked files and links to the checkout's own "
            "top-level files: make the alembic configuration find the database from there (an "
            "environment variable, or a file at the top of the checkout), then Retry; or give "
            "the app `deploy.releases: 2`; or Abort.",
            detail=read.tail() if read is not None else "",
        )


async def prepare(ctx: StepContext) -> Outcome:
    """Back up, list what can be restored, and preview the downgrade SQL for the approval."""
    db = _db(ctx)
    if db is None:
        return Outcome(summary="No database configured: nothing to prepare")
    target_ref = ctx.facts.assess.target_sha or ctx.incident.target or ""
    if not target_ref:
        raise StepError("the target version is unknown", hint="Retry the incident from the start.")
    if not db.backup:
        fresh = await assess_db(ctx, target_ref)
        if not fresh.migrations:
            return Outcome(
                summary="No migrations to undo: nothing to prepare", facts=DbFacts(assessed=fresh)
            )
        raise StepError(
            "no `database.backup` command is configured",
            hint="Rewind does not touch a database without a backup: add one to the apps file.",
        )
    path = backup_location(db, ctx.app.name, ctx.incident.id, datetime.now(UTC))
    script = _PrepareScript(ctx, db, target_ref, path)
    try:
        return await _prepare(ctx, script)
    finally:
        await script.drop_preview()  # left running only when the step ended before using it


async def _prepare(ctx: StepContext, script: _PrepareScript) -> Outcome:
    db, host, path, target_ref = script.db, script.host, script.path, script.target_ref
    results = await script.run()
    # What the script left unjudged (its end, or a command that stopped it) is judged here.
    fresh = script.fresh or await assess_db(ctx, target_ref, read=results[0])
    if not fresh.migrations:
        return Outcome(
            summary="No migrations to undo: nothing to prepare", facts=DbFacts(assessed=fresh)
        )
    current, target = fresh.current_revision, fresh.target_revision
    cmds = script.cmds or prepare_commands(ctx.app, db, path, current, target, script.scratch)
    for what in ("mkdir", "backup"):  # as `StepContext.run(check=True)` says they failed
        ran = script.result(results, what)
        if ran is not None:
            ran.check(what)
    # A command the script did not reach (its session cut) runs alone, as it did before.
    if script.result(results, "mkdir") is None:
        await ctx.run(host, cmds.mkdir, check=True, what="mkdir")
    if script.result(results, "backup") is None:
        await ctx.run(host, cmds.backup, check=True, what="backup", timeout=db.timeout)
    check = script.result(results, "check") or await ctx.run(host, cmds.check, stream=False)
    own = own_backup(host, path, check)
    if cmds.scratch:
        copied = script.result(results, "scratch copy")
        if copied is None:
            copied = await ctx.run(host, cmds.scratch, stream=False, what="scratch copy")
        copied.check(
            "the scratch copy of the deployed commit",
            hint="The downgrade after the redeploy runs in it: check the checkout and the disk "
            "on the host, then Retry; or Abort.",
        )
        await _same_database(ctx, script, cmds.scratch_current, results, current)

    deployed_read = script.result(results, "deployed at")
    deployed_at = await read_deployed_at(ctx, host, cmds.deployed_at, deployed_read)
    if cmds.listing and script.result(results, "listing") is None:
        listed = [p for p in await listed_backups(ctx, host, cmds.listing) if p != path]
    else:
        listed = script.listed(results)
    stat_read = script.result(results, "stat")
    stat = cmds.stat(ctx.app, host, listed)
    stats = (
        parse_stat(stat_read.output)
        if stat_read is not None
        else await stat_backups(ctx, host, stat)
    )
    backups = [own]
    for p in listed:
        if p in stats:
            size, mtime = stats[p]
            before = deployed_at is not None and mtime < deployed_at
            backups.append(_backup_fact(p, size, mtime, own=False, before=before))
    backups.sort(key=lambda b: b.mtime, reverse=True)
    older = [b for b in backups if b.before_deploy and not b.own]
    default = older[0] if older else own

    revision = sql_revision(current, target)
    result = await script.preview(cmds.sql)
    sql = sql_text(result.output)
    irreversible = [m.revision for m in fresh.migrations if m.irreversible]
    if not result.ok:
        if "NotImplementedError" in result.output and not irreversible:
            irreversible = [str(current)]
        preview = f"-- the downgrade SQL could not be generated:\n{result.tail()}"
    else:
        preview = _preview(sql)
        await ctx.notifier.upload(
            ctx.incident,
            f"downgrade-{ctx.app.name}-{short(current)}-to-{short(target)}.sql",
            sql + "\n",
            title=f"alembic downgrade --sql {revision}",
        )

    risk = ""
    if irreversible:
        risk = (
            f"Migration(s) {', '.join(irreversible)} cannot be undone by alembic (their "
            "downgrade() raises or does nothing): a downgrade would fail or lose data. "
        )
        if default.own:
            risk += (
                "No backup from before the deployed version went live was found, and the one "
                "just taken holds the new schema: roll the database back by hand."
            )
        else:
            risk += f"Restore from backup `{default.name}` ({default.time}) instead."
    copy = script.scratch
    copy_said = (
        f" A scratch copy of {copy.version} is in `{copy.directory}`, for the downgrade "
        "after the redeploy."
        if copy is not None
        else ""
    )
    await ctx.say(
        f"Backup `{own.name}` taken on {host.name}: {units.size(own.size)} at {own.time}. "
        f"{fresh.summary.capitalize()}.{copy_said}",
        *((para(Mark(Status.WARN), f" {risk}"),) if risk else ()),
    )
    return Outcome(
        summary=f"Backup {own.name} ({units.size(own.size)}); {fresh.summary}",
        facts=DbFacts(
            assessed=fresh,
            backup=own,
            backups=backups,
            restore_default=default.path,
            sql_preview=preview,
            sql_lines=len(sql.splitlines()) if result.ok else 0,
            irreversible=bool(irreversible),
            irreversible_revisions=irreversible,
            risk=risk,
            recommended="restore" if irreversible else "downgrade",
        ),
    )
