"""Reading the database's alembic revision, and what lies between it and the target's."""

from __future__ import annotations

from bot.config.apps_file import DatabaseConfig
from bot.ports import CommandResult
from bot.steps.code import app_repo
from bot.steps.context import StepContext
from bot.steps.database.commands import _db, _run_on, current_command, short
from bot.workflow.errors import StepError
from bot.workflow.facts import DbAssessment
from runners import alembic_static
from runners.alembic_output import parse_current
from runners.alembic_static import Revision, UnknownRevision


async def current_revision(
    ctx: StepContext, known: set[str], read: CommandResult | None = None
) -> str | None:
    """`alembic current` on `run_on` (or what it said when already `read`); None for an empty
    database."""
    db = _db(ctx)
    assert db is not None
    host = _run_on(ctx, db)
    result = read or await ctx.run(host, current_command(ctx.app, db), stream=False)
    result.check(
        "`alembic current`",
        hint="Is the database up and the checkout's alembic configured? Fix it, then Retry.",
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
