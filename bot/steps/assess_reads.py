"""Assess's reads on the hosts, every host at once: its version, and on the database's host
`alembic current` too, in the same session right after the version (one script), instead of
a session of its own once the versions are in. With `deploy.releases`, each host's kept
releases are read in that same session, after the version."""

from __future__ import annotations

import asyncio

from bot.config.apps_file import HostConfig
from bot.ports import CommandResult, ScriptCommand
from bot.steps import database
from bot.steps.context import StepContext
from bot.workflow.errors import HostError, UserFacingError
from runners import releases

Versions = dict[str, CommandResult | HostError]
Kept = dict[str, dict[str, str]]  # host -> {release name: the commit it holds}


async def read_hosts(ctx: StepContext) -> tuple[Versions, CommandResult | None, Kept]:
    """Each host's `version` result (or why it could not run), what `alembic current` said
    (None: not read here; Assess reads it itself later, as it did before), and each host's
    kept releases (empty without `deploy.releases`)."""
    db = ctx.app.database
    try:
        host = ctx.app.host(db.run_on) if db is not None else None
        current = database.current_command(ctx.app, db) if db is not None else None
    except (KeyError, UserFacingError, ValueError, IndexError):
        host = current = None  # the error is raised where it was before, if it still is
    if ctx.app.deploy.releases:
        return await _with_releases(ctx, host, current)
    versions, read = await _versions(ctx, host, current)
    return versions, read, {}


async def _versions(
    ctx: StepContext, host: HostConfig | None, current: str | None
) -> tuple[Versions, CommandResult | None]:
    if host is None or current is None or ctx.command("version", host) is None:
        return await ctx.run_all("version"), None
    others = [h for h in ctx.app.hosts if h.name != host.name]
    concurrency = max(1, ctx.app.deploy.concurrency - 1)  # the database's host is the other
    versions, (own, read) = await asyncio.gather(
        ctx.run_all("version", others, concurrency=concurrency),
        _with_current(ctx, host, current),
    )
    versions[host.name] = own
    return {h.name: versions[h.name] for h in ctx.app.hosts}, read


async def _with_current(
    ctx: StepContext, host: HostConfig, current: str
) -> tuple[CommandResult | HostError, CommandResult | None]:
    version = ctx.command("version", host)
    assert version is not None
    # The version streams to the thread as before; `alembic current` is read quietly, and
    # runs even if the version failed (Assess stops on that failure before using it).
    script = [ScriptCommand(version, check=False), ScriptCommand(current, stream=False)]
    try:
        results = await ctx.run_script(host, script)
    except HostError as exc:
        return exc, None
    own, read = results
    if own is None:  # the session ended before the command: as a dropped `run` says it
        own = CommandResult(host.name, version, None, "", 0.0)
    return own, read


async def _with_releases(
    ctx: StepContext, db_host: HostConfig | None, current: str | None
) -> tuple[Versions, CommandResult | None, Kept]:
    """Every host: its version, then its kept releases (quiet), then on the database's host
    `alembic current` (quiet): one script, one session per host."""
    limit = asyncio.Semaphore(ctx.app.deploy.concurrency)
    versions: Versions = {}
    kept: Kept = {}
    read: CommandResult | None = None

    async def one(host: HostConfig) -> None:
        nonlocal read
        version = ctx.command("version", host)
        if version is None:
            versions[host.name] = HostError("no `version` command configured", host=host.name)
            return
        listing = releases.listing(ctx.app.workdir(host))
        script = [ScriptCommand(version, check=False), ScriptCommand(listing, stream=False)]
        on_db = db_host is not None and current is not None and host.name == db_host.name
        if on_db and current is not None:
            script.append(ScriptCommand(current, stream=False))
        async with limit:
            try:
                results = await ctx.run_script(host, script)
            except HostError as exc:
                versions[host.name] = exc
                return
        own = results[0] or CommandResult(host.name, version, None, "", 0.0)
        versions[host.name] = own
        said = results[1]
        # Unread (a dropped session): nothing counts as kept, so the plan promises no switch.
        kept[host.name] = releases.parse_listing(said.output) if said and said.ok else {}
        if on_db:
            read = results[2]

    await asyncio.gather(*(one(h) for h in ctx.app.hosts))
    order = [h.name for h in ctx.app.hosts]
    return {h: versions[h] for h in order}, read, {h: kept[h] for h in order if h in kept}


def warm_hosts(kept: Kept, target: str, target_sha: str) -> list[str]:
    """The hosts that keep `target`, complete and at the target's commit, in host order."""
    try:
        name = releases.release_name(target)
    except UserFacingError:
        return []
    return [h for h, found in kept.items() if releases.holds(found.get(name, ""), target_sha)]
