"""Assess's reads on the hosts, every host at once: its version, and on the database's host
`alembic current` too, in the same session right after the version (one script), instead of
a session of its own once the versions are in."""

from __future__ import annotations

import asyncio

from bot.config.apps_file import HostConfig
from bot.ports import CommandResult, ScriptCommand
from bot.steps import database
from bot.steps.context import StepContext
from bot.workflow.errors import HostError, UserFacingError

Versions = dict[str, CommandResult | HostError]


async def read_hosts(ctx: StepContext) -> tuple[Versions, CommandResult | None]:
    """Each host's `version` result (or why it could not run), and what `alembic current`
    said (None: not read here; Assess reads it itself later, as it did before)."""
    db = ctx.app.database
    try:
        host = ctx.app.host(db.run_on) if db is not None else None
        current = database.current_command(ctx.app, db) if db is not None else None
    except (KeyError, UserFacingError, ValueError, IndexError):
        host = current = None  # the error is raised where it was before, if it still is
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
