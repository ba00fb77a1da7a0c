"""Step 3 — Roll back the database with alembic, or restore it from a backup.

Alembic only ever runs on the `run_on` host, in its checkout. That checkout still holds the
deployed (newer) version while this step runs: the older code does not know the newer
revisions, so the downgrade must happen before the redeploy moves the hosts back.
Revision files are read from the bot's clone as text (`runners.alembic_static`), never imported.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.config.apps_file import AppConfig, DatabaseConfig, HostConfig
from bot.ports import CommandResult, ScriptCommand
from bot.steps.code import app_repo
from bot.steps.context import Outcome, Planned, StepContext
from bot.workflow import units
from bot.workflow.errors import HostError, StepError, UserFacingError
from bot.workflow.facts import BackupFact, DbAssessment, DbFacts
from bot.workflow.messages import CodeBlock, Mark, Status, para
from bot.workflow.model import Criterion, HostResult
from runners import alembic_static, backups, templates
from runners.alembic_output import parse_current, sql_text
from runners.alembic_static import Revision, UnknownRevision
from runners.backups import backup_location, parse_stat

PREVIEW_LINES = 30
PREVIEW_CHARS = 2500
MAX_BACKUPS = 20
DEPLOYED_AT = "git reflog -1 --date=unix --format=%gd HEAD"  # when the checkout last moved


def _db(ctx: StepContext) -> DatabaseConfig | None:
    return ctx.app.database


def _run_on(ctx: StepContext, db: DatabaseConfig) -> HostConfig:
    return ctx.app.host(db.run_on)


def _cmd(app: AppConfig, host: HostConfig, template: str, **values: str) -> str:
    """A database command, filled like the deploy commands and run in the host's workdir."""
    rendered = templates.render(template, templates.host_values(app, host, **values))
    return templates.in_workdir(app, host, rendered)


def _alembic(app: AppConfig, db: DatabaseConfig, host: HostConfig, args: str, **v: str) -> str:
    return _cmd(app, host, f"{db.alembic} {args}", **v)


# ---- what the steps run: built here for the real run and for the plan ----------------------


def current_command(app: AppConfig, db: DatabaseConfig) -> str:
    host = app.host(db.run_on)
    return _alembic(app, db, host, "current")


def sql_revision(current: str | None, target: str | None) -> str:
    return f"{current}:{target or 'base'}"


@dataclass(frozen=True)
class PrepareCommands:
    """What `prepare` runs on `run_on`, in order (the stat of listed backups only when any)."""

    mkdir: str
    backup: str
    check: str
    deployed_at: str
    listing: str | None
    sql: str

    def sequence(self, current: str, stat: str | None) -> list[Planned]:
        """In the order `prepare` runs them (`current`: `alembic current`, run by Assess too)."""
        steps = [
            Planned("alembic current", current, changes=False),
            Planned("mkdir", self.mkdir, note="the backup's directory"),
            Planned("backup", self.backup),
            Planned("backup check", self.check, changes=False, note="exists and is not empty"),
            Planned("deployed at", self.deployed_at, changes=False),
        ]
        if self.listing:
            steps.append(Planned("backups", self.listing, changes=False, note="restorable ones"))
        if stat:
            steps.append(Planned("backup sizes", stat, changes=False))
        steps.append(Planned("downgrade SQL", self.sql, changes=False, note="offline: no database"))
        return steps

    def stat(self, app: AppConfig, host: HostConfig, paths: list[str]) -> str | None:
        if not paths:
            return None
        quoted = " ".join(shlex.quote(templates.check_value("backup", p)) for p in paths)
        return templates.in_workdir(app, host, f"stat -c '%s %Y %n' -- {quoted}")


def prepare_commands(
    app: AppConfig, db: DatabaseConfig, path: str, current: str | None, target: str | None
) -> PrepareCommands:
    host = app.host(db.run_on)
    q = shlex.quote(path)
    mkdir = f"mkdir -p -- {shlex.quote(posixpath.dirname(path) or '.')}"
    if not db.backup:
        raise UserFacingError("no `database.backup` command is configured")
    return PrepareCommands(
        mkdir=templates.in_workdir(app, host, mkdir),
        backup=_cmd(app, host, db.backup, backup=path),
        check=templates.in_workdir(app, host, f"test -s {q} && stat -c '%s %Y' -- {q}"),
        deployed_at=templates.in_workdir(app, host, DEPLOYED_AT),
        listing=_cmd(app, host, db.backups) if db.backups else None,
        sql=_alembic(
            app, db, host, "downgrade --sql {revision}", revision=sql_revision(current, target)
        ),
    )


def rollback_sequence(app: AppConfig, db: DatabaseConfig, target: str | None) -> list[Planned]:
    """What `_downgrade` runs, in order."""
    current = current_command(app, db)
    return [
        Planned("alembic current", current, changes=False),
        Planned("downgrade", downgrade_command(app, db, target)),
        Planned("alembic current", current, changes=False, note="must be the target revision"),
    ]


def downgrade_command(app: AppConfig, db: DatabaseConfig, target: str | None) -> str:
    host = app.host(db.run_on)
    return _alembic(app, db, host, "downgrade {revision}", revision=target or "base")


@dataclass(frozen=True)
class RestoreCommands:
    """What a restore runs: on `run_on` but `stop`, which runs on every host."""

    exists: str
    restore: str
    verify: str | None

    def sequence(self, app: AppConfig, current: str) -> list[tuple[str, Planned]]:
        """(host, command) in the order `_restore` runs them."""
        run_on = app.database.run_on if app.database else app.hosts[0].name
        out = [(run_on, Planned("backup check", self.exists, changes=False))]
        for host in app.hosts:
            stop = templates.build(app, host, "stop")
            if stop:
                out.append((host.name, Planned("stop", stop, note="until the redeploy")))
        out.append((run_on, Planned("restore", self.restore)))
        if self.verify:
            out.append((run_on, Planned("verify", self.verify, changes=False)))
        out.append((run_on, Planned("alembic current", current, changes=False)))
        return out


def restore_commands(app: AppConfig, db: DatabaseConfig, path: str) -> RestoreCommands:
    host = app.host(db.run_on)
    if not db.restore:
        raise UserFacingError("no `database.restore` command is configured")
    q = shlex.quote(templates.check_value("backup", path))
    return RestoreCommands(
        exists=templates.in_workdir(app, host, f"test -s {q}"),
        restore=_cmd(app, host, db.restore, backup=path),
        verify=_cmd(app, host, db.verify) if db.verify else None,
    )


def short(rev: str | None) -> str:
    return rev[:4] if rev else "base"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---- reading the database's revision ------------------------------------------------------


async def current_revision(
    ctx: StepContext, known: set[str], read: CommandResult | None = None
) -> str | None:
    """`alembic current` on `run_on` (or what it said when already `read`); None for an empty
    database."""
    db = _db(ctx)
    assert db is not None
    host = _run_on(ctx, db)
    result = read or await ctx.run(host, current_command(ctx.app, db), stream=False)
    if not result.ok:
        raise StepError(
            f"`alembic current` failed (exit {result.exit_status})",
            host=host.name,
            hint="Is the database up and the checkout's alembic configured? Fix it, then Retry.",
            detail=result.tail(),
        )
    revs = parse_current(result.output, known)
    if len(revs) > 1:
        raise StepError(
            f"the database has several alembic heads ({', '.join(revs)})",
            host=host.name,
            hint="Merge them by hand or restore from a backup; Rewind does not guess which.",
        )
    return revs[0] if revs else None


async def _revisions(ctx: StepContext, db: DatabaseConfig, *refs: str) -> dict[str, Revision]:
    repo = app_repo(ctx)
    revs: dict[str, Revision] = {}
    for ref in refs:
        revs.update(alembic_static.parse_files(await repo.files_at(ref, db.versions_dir)))
    return revs


def _summary(current: str | None, target: str | None, undo: list[Revision]) -> str:
    if not undo:
        return "migrations: none"
    messages = "; ".join(r.message or r.revision for r in undo)
    return f"migrations: {len(undo)} to undo ({short(current)} → {short(target)}: {messages})"


async def assess_db(
    ctx: StepContext,
    target_ref: str,
    deployed_ref: str | None = None,
    read: CommandResult | None = None,
) -> DbAssessment:
    """The revision the target expects, the one the database is at, and what lies between.

    Revision files come from both the target and the deployed commit (default: the
    `deployed_sha` fact), so the database's newer revision is known too. `read`: what
    `alembic current` said, when it was read already.
    """
    db = _db(ctx)
    if db is None:
        return DbAssessment(summary="migrations: none (no database configured)")
    deployed_ref = deployed_ref or ctx.facts.assess.deployed_sha
    target_revs = await _revisions(ctx, db, target_ref)
    revs = await _revisions(ctx, db, *(r for r in (deployed_ref, target_ref) if r))
    target_heads = alembic_static.heads(target_revs)
    if len(target_heads) > 1:
        raise StepError(
            f"`{target_ref}` has several alembic heads ({', '.join(target_heads)})",
            hint="Rewind downgrades to one revision only; roll the database back by hand.",
        )
    target = target_heads[0] if target_heads else None
    current = await current_revision(ctx, set(revs), read)
    try:
        undo = alembic_static.to_undo(revs, current, target)
    except UnknownRevision as exc:
        raise StepError(
            f"the database is at revision `{exc.revision}`, which neither the deployed nor the "
            "target version defines",
            host=db.run_on,
            hint="Someone migrated it from another branch: roll it back by hand or restore a "
            "backup, then Retry.",
        ) from None
    return DbAssessment(
        target_revision=target,
        current_revision=current,
        migrations=[r.fact() for r in undo],
        irreversible=any(r.irreversible for r in undo),
        summary=_summary(current, target, undo),
    )


# ---- backups ------------------------------------------------------------------------------


def _backup_fact(path: str, size: int, mtime: float, *, own: bool, before: bool) -> BackupFact:
    return BackupFact(
        path=path,
        name=posixpath.basename(path),
        size=size,
        time=_iso(mtime),
        mtime=mtime,
        own=own,
        before_deploy=before,
    )


async def stat_backups(
    ctx: StepContext, host: HostConfig, stat: str | None
) -> dict[str, tuple[int, float]]:
    cmd = stat
    if cmd is None:
        return {}
    result = await ctx.run(host, cmd, stream=False)
    return backups.parse_stat(result.output)


async def listed_backups(ctx: StepContext, host: HostConfig, listing: str | None) -> list[str]:
    if not listing:
        return []
    result = await ctx.run(host, listing, stream=False)
    return backups.parse_listing(result.output)[:MAX_BACKUPS]


async def read_deployed_at(
    ctx: StepContext, host: HostConfig, cmd: str, read: CommandResult | None = None
) -> float | None:
    """When the deployed version went live: the time the checkout on `run_on` last moved (its
    HEAD reflog); `read`: what `cmd` said, when it ran already."""
    result = read or await ctx.run(host, cmd, stream=False)
    match = re.search(r"@\{(\d+)\}", result.output)
    return float(match.group(1)) if match and result.ok else None


def _preview(sql: str) -> str:
    lines = sql.splitlines()
    text = "\n".join(lines[:PREVIEW_LINES])[:PREVIEW_CHARS]
    if len(text) < len(sql.rstrip()):
        text += f"\n-- … trimmed: {len(lines)} lines in all, full text in the attached file"
    return text


@dataclass
class _Read:
    """One command of a database step's script: what it is for the status line and how."""

    what: str
    command: ScriptCommand


def _quiet(command: str, *, deferred: bool = False) -> ScriptCommand:
    """A read: its output is parsed, not shown, and a failure is judged by the step."""
    return ScriptCommand(command, stream=False, check=False, deferred=deferred)


class _PrepareScript:
    """`prepare`'s commands on `run_on` as one script (one SSH session, not one per command).

    Each command's result is judged before the next one gets its go, as when each ran alone:
    an error stops the script there with the same message. The downgrade SQL's revision comes
    from `alembic current`, read by this script: it is sent as written from Assess's reading
    and, when the database has moved since, as a deferred command written from the new one."""

    def __init__(self, ctx: StepContext, db: DatabaseConfig, target_ref: str, path: str) -> None:
        self.ctx, self.db, self.target_ref, self.path = ctx, db, target_ref, path
        self.host = _run_on(ctx, db)
        seen = ctx.facts.assess
        self.expected = prepare_commands(
            ctx.app, db, path, seen.db_current_revision, seen.db_target_revision
        )
        cmds = self.expected
        reads = [
            _Read("command", _quiet(current_command(ctx.app, db))),
            _Read("mkdir", ScriptCommand(cmds.mkdir)),
            _Read("backup", ScriptCommand(cmds.backup, timeout=db.timeout)),
            _Read("check", _quiet(cmds.check)),
            _Read("deployed at", _quiet(cmds.deployed_at)),
        ]
        if cmds.listing:
            reads.append(_Read("listing", _quiet(cmds.listing)))
        reads += [
            _Read("stat", _quiet("# the listed backups' sizes", deferred=True)),
            _Read("sql", _quiet(cmds.sql)),
            _Read("sql again", _quiet("# the downgrade SQL, from the new reading", deferred=True)),
        ]
        self.names = [r.what for r in reads]
        self.commands = [r.command for r in reads]
        self.fresh: DbAssessment | None = None
        self.cmds: PrepareCommands | None = None
        self.stat: str | None = None

    def result(self, results: list[CommandResult | None], what: str) -> CommandResult | None:
        return results[self.names.index(what)] if what in self.names else None

    async def run(self) -> list[CommandResult | None]:
        whats = ["command" if n not in ("mkdir", "backup") else n for n in self.names]
        return await self.ctx.run_script(self.host, self.commands, decide=self.decide, whats=whats)

    async def decide(self, i: int, results: list[CommandResult | None]) -> bool | str:
        what = self.names[i]
        if what == "command":
            return True
        if self.fresh is None:
            self.fresh = await assess_db(self.ctx, self.target_ref, read=results[0])
        if not self.fresh.migrations:
            return False  # nothing to prepare: the rest is left out
        cmds = self.cmds = self.cmds or prepare_commands(
            self.ctx.app,
            self.db,
            self.path,
            self.fresh.current_revision,
            self.fresh.target_revision,
        )
        if what in ("mkdir", "backup", "check"):
            return True  # a failed mkdir or backup stops the script by itself (`check`)
        if what == "deployed at":
            own_backup(self.host, self.path, self.result(results, "check"))  # raises if bad
            return True
        if what == "listing":
            return True
        if what == "stat":
            self.stat = cmds.stat(self.ctx.app, self.host, self.listed(results))
            return self.stat or False
        if what == "sql":
            return cmds.sql == self.expected.sql
        return cmds.sql if cmds.sql != self.expected.sql else False

    def listed(self, results: list[CommandResult | None]) -> list[str]:
        listing = self.result(results, "listing")
        if listing is None:
            return []
        return [p for p in backups.parse_listing(listing.output)[:MAX_BACKUPS] if p != self.path]


def own_backup(host: HostConfig, path: str, check: CommandResult | None) -> BackupFact:
    """The backup just taken, from its check (`test -s` and its size and time)."""
    size_mtime = check.output.split() if check is not None else []
    if check is None or not check.ok or len(size_mtime) != 2:
        raise StepError(
            f"the backup `{path}` is missing or empty after the backup command",
            host=host.name,
            hint="Check the `database.backup` command and the disk, then Retry.",
            detail=check.tail() if check is not None else "",
        )
    return _backup_fact(path, int(size_mtime[0]), float(size_mtime[1]), own=True, before=False)


def _check_ran(host: HostConfig, what: str, result: CommandResult | None) -> None:
    """As `StepContext.run(check=True)` says a command failed."""
    if result is not None and not result.ok:
        raise HostError(
            f"{what} failed (exit {result.exit_status})",
            host=host.name,
            hint="Its last lines are above. Fix the cause, then Retry — or Abort.",
            detail=result.tail(),
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
    host = _run_on(ctx, db)
    path = backup_location(db, ctx.app.name, ctx.incident.id, datetime.now(UTC))
    script = _PrepareScript(ctx, db, target_ref, path)
    results = await script.run()
    # What the script left unjudged (its end, or a command that stopped it) is judged here.
    fresh = script.fresh or await assess_db(ctx, target_ref, read=results[0])
    if not fresh.migrations:
        return Outcome(
            summary="No migrations to undo: nothing to prepare", facts=DbFacts(assessed=fresh)
        )
    current, target = fresh.current_revision, fresh.target_revision
    cmds = script.cmds or prepare_commands(ctx.app, db, path, current, target)
    _check_ran(host, "mkdir", script.result(results, "mkdir"))
    _check_ran(host, "backup", script.result(results, "backup"))
    # A command the script did not reach (its session cut) runs alone, as it did before.
    if script.result(results, "mkdir") is None:
        await ctx.run(host, cmds.mkdir, check=True, what="mkdir")
    if script.result(results, "backup") is None:
        await ctx.run(host, cmds.backup, check=True, what="backup", timeout=db.timeout)
    check = script.result(results, "check") or await ctx.run(host, cmds.check, stream=False)
    own = own_backup(host, path, check)

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
    result = (
        script.result(results, "sql")
        or script.result(results, "sql again")
        or await ctx.run(host, cmds.sql, stream=False)
    )
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
    await ctx.say(
        f"Backup `{own.name}` taken on {host.name}: {units.size(own.size)} at {own.time}. "
        f"{fresh.summary.capitalize()}.",
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


# ---- rollback -----------------------------------------------------------------------------


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
    current = current_command(ctx.app, db)
    downgrade = downgrade_command(ctx.app, db, target)
    # One script, one session: alembic current, the downgrade, alembic current again.
    script = [
        _quiet(current),
        ScriptCommand(downgrade, timeout=db.timeout),
        _quiet(current),
    ]
    read: dict[str, str | None] = {}

    async def decide(i: int, results: list[CommandResult | None]) -> bool:
        if i == 0:
            return True
        if i == 1:
            read["now"] = await current_revision(ctx, known, results[0])
            return read["now"] != target  # already there: nothing more to run
        # A failed downgrade stops the script by itself (`check`).
        return read["now"] != target

    whats = ["command"] * len(script)
    results = await ctx.run_script(host, script, decide=decide, whats=whats)
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
    if not result.ok:
        raise StepError(
            f"`alembic downgrade {revision}` failed (exit {result.exit_status}); the database "
            f"was at `{now}`",
            host=host.name,
            hint=restore_hint,
            detail=result.tail(),
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
            failed[name] = f"exit {res.exit_status}: {res.tail(3)}"
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
    current = current_command(ctx.app, db)
    # One script, one session: the restore, the verify query, alembic current.
    script = [ScriptCommand(cmds.restore, timeout=db.timeout)]
    if cmds.verify:
        script.append(ScriptCommand(cmds.verify))
    script.append(_quiet(current))
    told: list[str] = []

    async def tell_verified(results: list[CommandResult | None]) -> str:
        """Judge the restore and the verify query; say what the query answered (once)."""
        restored = results[0] or await ctx.run(host, cmds.restore, timeout=db.timeout)
        if not restored.ok:
            raise StepError(
                f"the restore of `{backup.name}` failed (exit {restored.exit_status})",
                host=host.name,
                hint="The app is stopped on every host and the database may be partly "
                "restored. Fix the cause and Retry, or restore by hand.",
                detail=restored.tail(),
            )
        if not cmds.verify or told:
            return told[0] if told else ""
        check = results[1] or await ctx.run(host, cmds.verify)
        verified = check.output.strip()
        if not check.ok:
            raise StepError(
                f"the verify query failed after the restore (exit {check.exit_status})",
                host=host.name,
                hint="The app is still stopped. Check the database, then Retry or Abort.",
                detail=check.tail(),
            )
        await ctx.say(f"Verify after restore on {host.name}:", CodeBlock(verified))
        told.append(verified)
        return verified

    async def decide(i: int, results: list[CommandResult | None]) -> bool:
        if i == len(script) - 1:
            await tell_verified(results)
        return True

    whats = ["command"] * len(script)
    results = await ctx.run_script(host, script, decide=decide, whats=whats)
    verified = await tell_verified(results)
    # The app stays stopped: started now it would be the new code on the old schema (and might
    # migrate it forward again). The redeploy step starts the old version on every host.
    for name in stopped:
        hosts[name] = HostResult(host=name, ok=True, summary="stopped until the redeploy")
    state = ctx.facts.database
    target = state.target_revision
    known = {m.revision for m in state.migrations}
    known |= {target} if target else set()
    after = await current_revision(ctx, known, results[-1])
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
    await ctx.say(
        f"Restored `{backup.name}`; the database is at `{after or 'base'}`, the target "
        f"revision. The app stays stopped until the redeploy step starts {ctx.incident.target}."
    )
    return Outcome(
        summary=f"Restored {backup.name}; database at the target `{after or 'base'}`",
        hosts=hosts,
        criteria={Criterion.DATABASE: True},
        facts=ctx.facts.db.model_copy(
            update={"revision_after": after, "restored": backup.path, "verify": verified}
        ),
    )
