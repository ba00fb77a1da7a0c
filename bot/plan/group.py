"""The plan of a release group: every member planned as `/rollback plan APP` plans it (read-only),
a member whose shared database another member downgrades shown without its database commands,
the owner that downgrades it after its own redeploy with the downgrade after its redeploy, in
the kept release (it keeps releases) or in the scratch copy its backup step makes (a git
checkout), and the order the group runs in (`bot.workflow.group_flow`)."""

from __future__ import annotations

from bot.config.apps_file import AppConfig
from bot.incidents.service import new_incident_id
from bot.plan.build import PLAN_TTL, Planner
from bot.steps import database
from bot.workflow.errors import UserFacingError
from bot.workflow.group import Downgrade, downgrades, owned, shared_with
from bot.workflow.model import StepId
from bot.workflow.plan import GroupPlan, Plan, PlanCommand
from bot.workflow.policy import Actor
from bot.workflow.steps import DB_STEPS
from bot.workflow.version import Version
from runners import templates


async def plan_group(
    planner: Planner,
    name: str,
    pins: tuple[tuple[str, Version], ...],
    actor: Actor,
    reason: str = "",
) -> GroupPlan:
    """Refused as `/rollback GROUP` refuses (unknown member, no rights on every member)."""
    from bot.incidents.groups import GroupRequest

    groups = planner.incidents.groups
    apps = groups.check_request(GroupRequest(name, reason or "a plan", actor, pins))
    members = groups.order(name)
    picked = dict(pins)
    plans: list[Plan] = []
    for app in apps:
        plan = await planner.plan(app.name, picked.get(app.name), actor, reason=reason)
        owner = shared_with(members, app.name)
        down = owned(members, app.name)
        if owner is not None:
            plan.database = None
            plan.commands = [c for c in plan.commands if c.step not in DB_STEPS]
            plan.restore_commands = []
            await planner.incidents.store.save_plan(plan.id, plan.model_dump_json(), PLAN_TTL)
        elif down is not None and plan.database is not None:
            after_redeploy(app, plan)
            await planner.incidents.store.save_plan(plan.id, plan.model_dump_json(), PLAN_TTL)
        plans.append(plan)
    if not plans:
        raise UserFacingError(f"The group `{name}` has no apps.")
    group = GroupPlan(
        id=new_incident_id(), group=name, plans=plans, order=order_lines(planner, name, plans)
    )
    # Kept for `Run this plan`, as one app's plan is (each member's plan is also kept alone).
    await planner.incidents.store.save_plan(group.id, group.model_dump_json(), PLAN_TTL)
    return group


def after_redeploy(app: AppConfig, plan: Plan) -> None:
    """The owner's downgrade as it runs after its redeploy: in the kept release of the deployed
    version, or the scratch copy of its commit made by the backup step (its marker read first;
    the scratch copy removed last), after the redeploy's commands; a restore then starts the
    app again (it is already on the target)."""
    db = app.database
    assert db is not None and plan.database is not None
    kept: database.KeptRelease | None = None  # no checkout: the workdir, left alone
    if app.deploy.keeps_releases:
        kept = database.kept_release(app, db, plan.deployed)
    elif app.deploy.checkout:
        kept = database.scratch_copy(app, db, plan.id, plan.deployed, plan.basis.deployed_sha)
        _scratch_in_prepare(app, plan, kept)
    moved = [
        PlanCommand(
            step=StepId.DB_ROLLBACK,
            host=plan.database.run_on,
            name=p.name,
            command=p.command,
            changes=p.changes,
            note=p.note,
        )
        for p in database.rollback_sequence(app, db, plan.database.target, kept)
    ]
    rest = [c for c in plan.commands if c.step is not StepId.DB_ROLLBACK]
    at = max((i for i, c in enumerate(rest) if c.step is StepId.REDEPLOY), default=len(rest) - 1)
    plan.commands = [*rest[: at + 1], *moved, *rest[at + 1 :]]
    start = "start" if templates.template(app, "start") else "restart"
    plan.restore_commands = [
        c.model_copy(update={"note": "until the restore ends"}) if c.name == "stop" else c
        for c in plan.restore_commands
    ]
    for host in app.hosts:
        if command := templates.build(app, host, start):
            plan.restore_commands.append(
                PlanCommand(
                    step=StepId.DB_ROLLBACK,
                    host=host.name,
                    name=start,
                    command=command,
                    note="the target again: it was redeployed before the restore",
                )
            )


def _scratch_in_prepare(app: AppConfig, plan: Plan, kept: database.KeptRelease) -> None:
    """The scratch copy's making and its `alembic current`, where the backup step's script
    runs them: after the backup check."""
    db = app.database
    assert db is not None and plan.database is not None and kept.make is not None
    run_on = plan.database.run_on
    made = [
        PlanCommand(
            step=StepId.DB_PREPARE,
            host=run_on,
            name="scratch copy",
            command=kept.make,
            note="the deployed commit's files, for the downgrade after the redeploy",
        ),
        PlanCommand(
            step=StepId.DB_PREPARE,
            host=run_on,
            name="alembic current",
            command=database.current_command(app, db, kept.directory),
            changes=False,
            note="in the scratch copy: must read what the checkout read",
        ),
    ]
    names = [(c.step, c.name) for c in plan.commands]
    at = names.index((StepId.DB_PREPARE, "backup check")) + 1
    plan.commands[at:at] = made


def order_lines(planner: Planner, name: str, plans: list[Plan]) -> list[str]:
    members = planner.incidents.groups.order(name)
    production = groups_production(planner, name)
    lines = [
        "Assess every app: " + ", ".join(f"`{p.app}`" for p in plans) + ".",
        "One decision (Roll back / Fix forward) for the group"
        + (", then one approval (four-eyes: a member is production)." if production else "."),
    ]
    by_owner = {d.owner: d for d in downgrades(members)}
    for i, plan in enumerate(plans, 1):
        down = by_owner.get(plan.app)
        if down is not None and plan.database is not None:
            steps = _owner_steps(plan, down)
        elif (owner := shared_with(members, plan.app)) is not None:
            steps = ["roll back code", f"(its database is downgraded by `{owner}`)"]
            steps += ["redeploy", "verify"]
        else:
            steps = ["roll back code", "redeploy", "verify"]
        lines.append(f"{i}. `{plan.app}` → `{plan.target}`: " + ", ".join(steps) + ".")
    lines.append("Then monitor every app, and write the reports.")
    return lines


def _owner_steps(plan: Plan, down: Downgrade) -> list[str]:
    named = [f"`{a}`" for a in down.after]
    after = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else "".join(named)
    redeployed = "are redeployed" if len(down.after) > 1 else "is redeployed"
    if down.in_place:
        return [
            "roll back code",
            f"back up the database `{down.database}`",
            "redeploy",
            f"downgrade the database `{down.database}` once (its own approval; after {after} "
            f"{redeployed}: where its alembic runs, which the redeploy does not change)",
            "verify",
        ]
    copy = "the scratch copy" if down.scratch else "the kept release"
    return [
        "roll back code",
        f"back up the database `{down.database}`"
        + (f" and make a scratch copy of `{plan.deployed}`" if down.scratch else ""),
        "redeploy",
        f"downgrade the database `{down.database}` once (its own approval; after {after} "
        f"{redeployed}: in {copy} of `{plan.deployed}`, which still holds the newer "
        "revision files" + (", then removed" if down.scratch else "") + ")",
        "verify",
    ]


def groups_production(planner: Planner, name: str) -> bool:
    return planner.incidents.groups.policy(name).production


def markdown(group: GroupPlan) -> str:
    from bot.plan import render

    head = [
        f"# Rollback plan of the group `{group.group}`",
        "",
        f"Plan `{group.id}`. `Run this plan` opens the group as planned: each app pinned to its "
        "target below, as the incident of its own plan's id; each app's Assess says what "
        "changed since the plan was made, before anything runs.",
        "",
        "## Order",
        "",
    ]
    head += [f"- {line}" if not line[0].isdigit() else line for line in group.order]
    parts = ["\n".join(head)]
    parts += [render.markdown(plan) for plan in group.plans]
    return "\n\n".join(parts) + "\n"


def summary(group: GroupPlan) -> str:
    from bot.plan import render

    lines = [f"Plan of the group {group.group}:", *group.order, ""]
    lines += [render.summary(plan) for plan in group.plans]
    return "\n".join(lines)


def filename(group: GroupPlan) -> str:
    return f"rollback-plan-{group.group}-{group.id}.md"
