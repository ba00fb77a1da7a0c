"""The database steps' commands, values filled in: built here for the real run and for the
plan, so the two send the same text."""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.config.apps_file import AppConfig, DatabaseConfig, HostConfig
from bot.steps.context import Planned, StepContext
from bot.steps.script import HostScript, Line, read
from bot.workflow.errors import UserFacingError
from bot.workflow.model import StepId
from runners import releases, templates
from runners import scratch_copy as copies

DEPLOYED_AT = "git reflog -1 --date=unix --format=%gd HEAD"  # when the checkout last moved


def _db(ctx: StepContext) -> DatabaseConfig | None:
    return ctx.app.database


def _run_on(ctx: StepContext, db: DatabaseConfig) -> HostConfig:
    return ctx.app.host(db.run_on)


def _cmd(app: AppConfig, host: HostConfig, template: str, **values: str) -> str:
    """A database command, filled like the deploy commands and run in the host's workdir."""
    rendered = templates.render(template, templates.host_values(app, host, **values))
    return templates.in_workdir(app, host, rendered)


def _alembic(
    app: AppConfig,
    db: DatabaseConfig,
    host: HostConfig,
    args: str,
    cwd: str | None = None,
    **v: str,
) -> str:
    if cwd is None:
        return _cmd(app, host, f"{db.alembic} {args}", **v)
    # In a given directory (a kept release): `{workdir}` means that directory too.
    values = templates.host_values(app, host, **v, workdir=cwd)
    return templates.in_dir(cwd, templates.render(f"{db.alembic} {args}", values))


def current_command(app: AppConfig, db: DatabaseConfig, cwd: str | None = None) -> str:
    host = app.host(db.run_on)
    return _alembic(app, db, host, "current", cwd)


@dataclass(frozen=True)
class KeptRelease:
    """The release of the version being rolled back from, kept on `run_on` (`deploy.releases`),
    or a scratch copy of its commit made there before the redeploy (`scratch_copy`): where
    `alembic downgrade` runs once the redeploy has moved the checkout to the target, since only
    that copy still holds the newer revision files."""

    version: str
    directory: str
    check: str  # read-only: the release's marker (the commit it holds; empty: not complete)
    make: str | None = None  # a scratch copy: made by Prepare, before the redeploy
    remove: str | None = None  # a scratch copy: removed once the database is at the target

    @property
    def scratch(self) -> bool:
        return self.make is not None

    @property
    def kind(self) -> str:
        return "scratch copy" if self.scratch else "kept release"

    @property
    def words(self) -> str:
        return f"{self.kind} of {self.version}"


def kept_release(app: AppConfig, db: DatabaseConfig, version: str) -> KeptRelease:
    """Raises UserFacingError when `version` cannot name a release directory."""
    base = app.workdir(app.host(db.run_on))
    return KeptRelease(version, releases.release_dir(base, version), releases.kept(base, version))


def scratch_copy(
    app: AppConfig, db: DatabaseConfig, incident: str, version: str, sha: str
) -> KeptRelease:
    """The scratch copy of the deployed commit `sha` (`version`) that `incident` makes on
    `run_on` before its redeploy. Raises UserFacingError for a value that cannot go in a
    command (an unknown commit: '')."""
    host = app.host(db.run_on)
    where = scratch_copy_dir(app, db, incident)
    make = copies.make(app.run_dir(host), sha, where)
    return KeptRelease(version, where, copies.marker(where), make=make, remove=copies.remove(where))


def scratch_copy_dir(app: AppConfig, db: DatabaseConfig, incident: str) -> str:
    base = app.workdir(app.host(db.run_on))
    return copies.directory(base, incident, bool(app.deploy.releases))


def scratch_copy_removal(app: AppConfig, db: DatabaseConfig, incident: str) -> str:
    """The scratch copy of `incident` removed (at its end, when its downgrade did not)."""
    return copies.remove(scratch_copy_dir(app, db, incident))


def makes_scratch_copy(app: AppConfig, order: list[StepId]) -> bool:
    """A release group's owner whose downgrade comes after its own redeploy (`order`: its
    steps) and that keeps no releases: its database steps work in a scratch copy."""
    if StepId.DB_ROLLBACK not in order or StepId.REDEPLOY not in order:
        return False
    late = order.index(StepId.DB_ROLLBACK) > order.index(StepId.REDEPLOY)
    return late and not app.deploy.keeps_releases and app.deploy.checkout


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
    scratch: str | None = None  # the scratch copy of the deployed commit (`scratch_copy`)
    scratch_current: str | None = None  # `alembic current` in it: must read the same revision

    def script(self, current: str, timeout: float | None = None) -> HostScript:
        """`prepare`'s commands on `run_on` in order, as one script (`current`: the `alembic
        current` command, run by Assess too). The listed backups' sizes are written when their
        turn comes. The downgrade SQL is not in it: it runs beside it (`preview`)."""
        return HostScript.of(
            read("command", current, label="alembic current"),
            Line("mkdir", self.mkdir, note="the backup's directory"),
            Line("backup", self.backup, timeout=timeout),
            read("check", self.check, label="backup check", note="exists and is not empty"),
            Line(
                "scratch copy",
                self.scratch,
                stream=False,
                note="the deployed commit's files, for the downgrade after the redeploy",
            )
            if self.scratch
            else None,
            read(
                "scratch current",
                self.scratch_current,
                label="alembic current",
                note="in the scratch copy: must read what the checkout read",
            )
            if self.scratch_current
            else None,
            read("deployed at", self.deployed_at),
            read("listing", self.listing, label="backups", note="restorable ones")
            if self.listing
            else None,
            read("stat", "# the listed backups' sizes", label="backup sizes", deferred=True),
        )

    def preview(self) -> Line:
        """The downgrade SQL. Offline (`--sql` reads no database), so it runs in a session of
        its own beside the script, from Assess's reading: `alembic` takes a second or more,
        and the re-read only rarely finds the database moved (then it runs again)."""
        return read(
            "sql", self.sql, label="downgrade SQL", note="offline: no database; beside the backup"
        )

    def sequence(self, current: str, stat: str | None) -> list[Planned]:
        """The commands as the plan shows them: the script, the sizes' command as written from
        the listing (`stat`, None: no backup listed), and the SQL beside it."""
        planned = []
        for line in self.script(current):
            if line.name == "stat" and stat:
                planned.append(replace(line, command=stat).planned())
            elif not line.deferred:
                planned.append(line.planned())
        return [*planned[:1], self.preview().planned(), *planned[1:]]

    def stat(self, app: AppConfig, host: HostConfig, paths: list[str]) -> str | None:
        if not paths:
            return None
        quoted = " ".join(shlex.quote(templates.check_value("backup", p)) for p in paths)
        return templates.in_workdir(app, host, f"stat -c '%s %Y %n' -- {quoted}")


def prepare_commands(
    app: AppConfig,
    db: DatabaseConfig,
    path: str,
    current: str | None,
    target: str | None,
    scratch: KeptRelease | None = None,
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
        scratch=scratch.make if scratch is not None else None,
        scratch_current=current_command(app, db, scratch.directory) if scratch else None,
    )


def downgrade_script(
    app: AppConfig, db: DatabaseConfig, target: str | None, kept: KeptRelease | None = None
) -> HostScript:
    """What the downgrade runs on `run_on`, in order, as one script: for the run and the plan.
    `kept`: run in that kept release or scratch copy (after the redeploy), its marker read
    first; a scratch copy is removed last."""
    cwd = kept.directory if kept else None
    current = current_command(app, db, cwd)
    label = "scratch copy marker" if kept and kept.scratch else "kept release"
    return HostScript.of(
        read("kept", kept.check, label=label, note="must hold the deployed version")
        if kept
        else None,
        read("current", current, label="alembic current"),
        Line("downgrade", downgrade_command(app, db, target, cwd), timeout=db.timeout),
        read("after", current, label="alembic current", note="must be the target revision"),
        Line("remove", kept.remove, label="remove scratch copy", note="once at the target")
        if kept and kept.remove
        else None,
    )


def rollback_sequence(
    app: AppConfig, db: DatabaseConfig, target: str | None, kept: KeptRelease | None = None
) -> list[Planned]:
    """What the downgrade runs, in order."""
    return downgrade_script(app, db, target, kept).planned()


def downgrade_command(
    app: AppConfig, db: DatabaseConfig, target: str | None, cwd: str | None = None
) -> str:
    host = app.host(db.run_on)
    return _alembic(app, db, host, "downgrade {revision}", cwd, revision=target or "base")


@dataclass(frozen=True)
class RestoreCommands:
    """What a restore runs: on `run_on` but `stop`, which runs on every host."""

    exists: str
    restore: str
    verify: str | None

    def script(self, current: str, timeout: float | None) -> HostScript:
        """What runs on `run_on` once the app is stopped, as one script: for the run and the
        plan (`current`: the `alembic current` command)."""
        return HostScript.of(
            Line("restore", self.restore, timeout=timeout),
            Line("verify", self.verify, changes=False) if self.verify else None,
            read("current", current, label="alembic current"),
        )

    def sequence(self, app: AppConfig, current: str) -> list[tuple[str, Planned]]:
        """(host, command) in the order `_restore` runs them."""
        db = app.database
        run_on = db.run_on if db else app.hosts[0].name
        out = [(run_on, Planned("backup check", self.exists, changes=False))]
        for host in app.hosts:
            stop = templates.build(app, host, "stop")
            if stop:
                out.append((host.name, Planned("stop", stop, note="until the redeploy")))
        script = self.script(current, db.timeout if db else None)
        out += [(run_on, planned) for planned in script.planned()]
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
