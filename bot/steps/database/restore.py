"""Step 3b, rollback by restore: stop the app everywhere, restore a backup, verify it."""

from __future__ import annotations

from bot.config.apps_file import DatabaseConfig
from bot.ports import CommandResult
from bot.steps.context import Outcome, StepContext
from bot.steps.database.commands import _run_on, current_command, restore_commands
from bot.steps.database.revision import current_revision
from bot.workflow import units
from bot.workflow.errors import HostError, StepError
from bot.workflow.facts import BackupFact
from bot.workflow.messages import CodeBlock
from bot.workflow.model import Criterion, HostResult, StepId, StepStatus
from runners import templates


def _chosen_backup(ctx: StepContext) -> BackupFact:
    wanted = ctx.facts.restore_backup or ctx.facts.db.restore_default
    for backup in ctx.facts.db.backups:
        if wanted in (backup.path, backup.name):
            return backup
    raise StepError(
        f"`{wanted}` is not one of the backups offered at the approval"
        if wanted
        else "no backup was chosen",
        hint="Pick one of the listed backups, then Retry.",
    )


def _failed_hosts(results: dict[str, CommandResult | HostError]) -> dict[str, str]:
    failed = {}
    for name, res in results.items():
        if isinstance(res, HostError):
            failed[name] = res.what
        elif not res.ok:
            failed[name] = f"{res.status}: {res.tail(3)}"
    return failed


async def _restore(ctx: StepContext, db: DatabaseConfig) -> Outcome:
    host = _run_on(ctx, db)
    if not db.restore:
        raise StepError("no `database.restore` command is configured", hint="Add one, then Retry.")
    start = "start" if templates.template(ctx.app, "start") else "restart"  # only on failure
    if not templates.template(ctx.app, "stop"):
        raise StepError(
            "no `stop` command is configured for the app",
            hint="The runbook stops the app before a restore: add `deploy.commands.stop` "
            "(and `start`), then Retry.",
        )
    backup = _chosen_backup(ctx)
    cmds = restore_commands(ctx.app, db, backup.path)
    exists = await ctx.run(host, cmds.exists, stream=False)
    if not exists.ok:
        raise StepError(
            f"the backup `{backup.path}` is missing or empty",
            host=host.name,
            hint="Pick another backup, then Retry.",
        )

    hosts: dict[str, HostResult] = {}
    stopped = await ctx.run_all("stop")
    failed = _failed_hosts(stopped)
    if failed:
        await ctx.run_all(start, [h for h in ctx.app.hosts if h.name not in failed])
        raise StepError(
            f"the app did not stop on {', '.join(sorted(failed))}; nothing was restored",
            hint="The other hosts were started again. Fix the stop, then Retry.",
            detail="\n".join(f"{h}: {why}" for h, why in failed.items()),
        )
    await ctx.say(
        f"App stopped on {len(stopped)} host(s). Restoring `{backup.name}` "
        f"({units.size(backup.size)}, {backup.time}) on {host.name}…"
    )
    # One script, one session: the restore, the verify query, alembic current.
    script = cmds.script(current_command(ctx.app, db), db.timeout)
    told: list[str] = []

    async def tell_verified(results: list[CommandResult | None]) -> str:
        """Judge the restore and the verify query; say what the query answered (once)."""
        restored = script.result(results, "restore") or await ctx.run(
            host, cmds.restore, timeout=db.timeout
        )
        restored.check(
            f"the restore of `{backup.name}`",
            hint="The app is stopped on every host and the database may be partly "
            "restored. Fix the cause and Retry, or restore by hand.",
        )
        if not cmds.verify or told:
            return told[0] if told else ""
        check = script.result(results, "verify") or await ctx.run(host, cmds.verify)
        verified = check.output.strip()
        check.check(
            "the verify query after the restore",
            hint="The app is still stopped. Check the database, then Retry or Abort.",
        )
        await ctx.say(f"Verify after restore on {host.name}:", CodeBlock(verified))
        told.append(verified)
        return verified

    async def decide(i: int, results: list[CommandResult | None]) -> bool:
        if i == len(script.lines) - 1:
            await tell_verified(results)
        return True

    whats = ["command"] * len(script.lines)
    results = await ctx.run_script(host, script.sent(), decide=decide, whats=whats)
    verified = await tell_verified(results)
    # The app stays stopped: started now it would be the new code on the old schema (and might
    # migrate it forward again). The redeploy step starts the old version on every host.
    for name in stopped:
        hosts[name] = HostResult(host=name, ok=True, summary="stopped until the redeploy")
    state = ctx.facts.database
    target = state.target_revision
    known = {m.revision for m in state.migrations}
    known |= {target} if target else set()
    after = await current_revision(ctx, known, script.result(results, "current"))
    if after != target:
        error = StepError(
            f"restored `{backup.name}`, but the database is at `{after or 'base'}`, not the "
            f"target `{target or 'base'}`: this backup does not match the old code's schema",
            host=host.name,
            hint="The app is stopped on every host. Restore another backup (an approver "
            "clicks it below), or Abort and start the app by hand.",
        )
        error.hosts = dict(hosts)
        raise error
    if ctx.incident.step(StepId.REDEPLOY).status is StepStatus.SUCCEEDED:
        # Restored after the redeploy (a release group's shared database): the hosts already
        # run the target, which matches the restored schema: start it again now.
        hosts = await _start_again(ctx, start, list(stopped), after)
    else:
        await ctx.say(
            f"Restored `{backup.name}`; the database is at `{after or 'base'}`, the target "
            f"revision. The app stays stopped until the redeploy step starts "
            f"{ctx.incident.target}."
        )
    return Outcome(
        summary=f"Restored {backup.name}; database at the target `{after or 'base'}`",
        hosts=hosts,
        criteria={Criterion.DATABASE: True},
        facts=ctx.facts.db.model_copy(
            update={"revision_after": after, "restored": backup.path, "verify": verified}
        ),
    )


async def _start_again(
    ctx: StepContext, start: str, names: list[str], after: str | None
) -> dict[str, HostResult]:
    """The app started again on every host it was stopped on (already on the target)."""
    hosts = [h for h in ctx.app.hosts if h.name in names]
    started = await ctx.run_all(start, hosts)
    failed = _failed_hosts(started)
    if failed:
        error = StepError(
            f"the database was restored (at `{after or 'base'}`), but the app did not start "
            f"again on {', '.join(sorted(failed))}",
            hint=f"Start it there by hand (`{start}`) and check it, then Abort or go on by "
            "hand: a Retry would stop the app and restore again.",
            detail="\n".join(f"{h}: {why}" for h, why in failed.items()),
        )
        raise error
    await ctx.say(
        f"Restored; the database is at `{after or 'base'}`, the target revision. The app "
        f"({ctx.incident.target}, already redeployed) is started again on {len(hosts)} host(s)."
    )
    return {
        n: HostResult(host=n, ok=True, summary="started again after the restore") for n in names
    }
