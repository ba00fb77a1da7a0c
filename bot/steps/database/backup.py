"""The backups: the one `prepare` takes, the ones listed on the host, and `prepare`'s commands
as one script."""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import re

from bot.config.apps_file import DatabaseConfig, HostConfig
from bot.ports import CommandResult
from bot.steps.context import StepContext
from bot.steps.database.commands import (
    KeptRelease,
    PrepareCommands,
    _iso,
    _run_on,
    current_command,
    makes_scratch_copy,
    prepare_commands,
    scratch_copy,
)
from bot.steps.database.revision import assess_db
from bot.workflow.errors import StepError, UserFacingError
from bot.workflow.facts import BackupFact, DbAssessment
from runners import backups

MAX_BACKUPS = 20


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


def scratch_for(ctx: StepContext, db: DatabaseConfig) -> KeptRelease | None:
    """The scratch copy of the deployed commit this incident makes before its redeploy, when
    its downgrade comes after that redeploy and it keeps no releases (None: it makes none)."""
    if not makes_scratch_copy(ctx.app, [r.id for r in ctx.incident.steps]):
        return None
    seen = ctx.facts.assess
    host = db.run_on
    hint = "Retry from the start (Assess reads the deployed commit), or Abort."
    if not seen.deployed_sha:
        raise StepError(
            f"the deployed commit on {host} is unknown: no scratch copy of it can be made for "
            "the downgrade after the redeploy",
            host=host,
            hint=hint,
        )
    try:
        return scratch_copy(
            ctx.app, db, ctx.incident.id, seen.deployed or seen.deployed_sha, seen.deployed_sha
        )
    except UserFacingError as exc:
        raise StepError(str(exc), host=host, hint=hint) from exc


class _PrepareScript:
    """`prepare`'s commands on `run_on` as one script (one SSH session, not one per command),
    and the downgrade SQL beside it in a session of its own on the same connection.

    Each command's result is judged before the next one gets its go, as when each ran alone:
    an error stops the script there with the same message. The downgrade SQL starts at once,
    for the revision Assess read; the script's `alembic current` reads it again, and when the
    database has moved since, that preview is dropped and one for the new reading started."""

    def __init__(self, ctx: StepContext, db: DatabaseConfig, target_ref: str, path: str) -> None:
        self.ctx, self.db, self.target_ref, self.path = ctx, db, target_ref, path
        self.host = _run_on(ctx, db)
        seen = ctx.facts.assess
        self.scratch = scratch_for(ctx, db)
        self.expected = prepare_commands(
            ctx.app, db, path, seen.db_current_revision, seen.db_target_revision, self.scratch
        )
        # Assess read a revision to undo: its preview is worth starting before the re-read.
        self.early = seen.db_current_revision not in (None, seen.db_target_revision)
        self.script = self.expected.script(current_command(ctx.app, db), db.timeout)
        self.names = self.script.names
        self.fresh: DbAssessment | None = None
        self.cmds: PrepareCommands | None = None
        self.stat: str | None = None
        self._preview: tuple[str, asyncio.Task[CommandResult]] | None = None

    def result(self, results: list[CommandResult | None], what: str) -> CommandResult | None:
        return self.script.result(results, what)

    async def run(self) -> list[CommandResult | None]:
        if self.early:
            await self._start_preview(self.expected.sql)
        named = ("mkdir", "backup", "scratch copy")
        whats = [n if n in named else "command" for n in self.names]
        return await self.ctx.run_script(
            self.host, self.script.sent(), decide=self.decide, whats=whats
        )

    async def decide(self, i: int, results: list[CommandResult | None]) -> bool | str:
        what = self.names[i]
        if what == "command":
            return True
        if self.fresh is None:
            self.fresh = await assess_db(self.ctx, self.target_ref, read=results[0])
        if not self.fresh.migrations:
            await self.drop_preview()
            return False  # nothing to prepare: the rest is left out
        cmds = self.cmds = self.cmds or prepare_commands(
            self.ctx.app,
            self.db,
            self.path,
            self.fresh.current_revision,
            self.fresh.target_revision,
            self.scratch,
        )
        await self._start_preview(cmds.sql)  # a no-op unless the database moved since Assess
        if what in ("mkdir", "backup", "check", "scratch copy", "scratch current"):
            return True  # a failed mkdir or backup stops the script by itself (`check`)
        if what == "deployed at":
            own_backup(self.host, self.path, self.result(results, "check"))  # raises if bad
        if what == "stat":
            self.stat = cmds.stat(self.ctx.app, self.host, self.listed(results))
            return self.stat or False
        return True  # a failed mkdir or backup stops the script by itself (`check`)

    async def _start_preview(self, sql: str) -> None:
        """Run `sql` beside the script, unless it already runs; a preview of another revision
        is dropped."""
        if self._preview is not None and self._preview[0] == sql:
            return
        await self.drop_preview()
        await self.ctx.fence()  # read-only, but nothing starts on a host once the lock is lost
        task = asyncio.create_task(self.ctx.run(self.host, sql, stream=False))
        self._preview = (sql, task)

    async def preview(self, sql: str) -> CommandResult:
        """The downgrade SQL's result for `sql`: the one started beside the script if it was
        that command, else run now."""
        await self._start_preview(sql)
        assert self._preview is not None
        task = self._preview[1]
        self._preview = None
        return await task

    async def drop_preview(self) -> None:
        """Stop a preview no longer wanted (its session is closed: it changes nothing)."""
        if self._preview is None:
            return
        task = self._preview[1]
        self._preview = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

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
