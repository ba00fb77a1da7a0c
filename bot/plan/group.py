"""The plan of a release group: every member planned as `/rollback plan APP` plans it (read-only),
a member whose shared database another member downgrades shown without its database commands,
and the order the group runs in (`bot.workflow.group_flow`)."""

from __future__ import annotations

from bot.plan.build import PLAN_TTL, Planner
from bot.workflow.errors import UserFacingError
from bot.workflow.group import downgrades, shared_with
from bot.workflow.plan import GroupPlan, Plan
from bot.workflow.policy import Actor
from bot.workflow.steps import DB_STEPS
from bot.workflow.version import Version


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
    members = planner.incidents.apps.group_members(name)
    picked = dict(pins)
    plans: list[Plan] = []
    for app in apps:
        plan = await planner.plan(app.name, picked.get(app.name), actor, reason=reason)
        owner = shared_with(members, app.name)
        if owner is not None:
            plan.database = None
            plan.commands = [c for c in plan.commands if c.step not in DB_STEPS]
            plan.restore_commands = []
            await planner.incidents.store.save_plan(plan.id, plan.model_dump_json(), PLAN_TTL)
        plans.append(plan)
    if not plans:
        raise UserFacingError(f"The group `{name}` has no apps.")
    return GroupPlan(group=name, plans=plans, order=order_lines(planner, name, plans))


def order_lines(planner: Planner, name: str, plans: list[Plan]) -> list[str]:
    members = planner.incidents.apps.group_members(name)
    production = groups_production(planner, name)
    lines = [
        "Assess every app: " + ", ".join(f"`{p.app}`" for p in plans) + ".",
        "One decision (Roll back / Fix forward) for the group"
        + (", then one approval (four-eyes: a member is production)." if production else "."),
    ]
    owned = {d.owner: d for d in downgrades(members)}
    for i, plan in enumerate(plans, 1):
        steps = ["roll back code"]
        down = owned.get(plan.app)
        if down is not None and plan.database is not None:
            after = ", ".join(f"`{a}`" for a in down.after)
            steps.append(
                f"back up and downgrade the database `{down.database}` once (its own approval"
                + (f"; after {after} is redeployed)" if after else ")")
            )
        elif (owner := shared_with(members, plan.app)) is not None:
            steps.append(f"(its database is downgraded by `{owner}`)")
        steps += ["redeploy", "verify"]
        lines.append(f"{i}. `{plan.app}` → `{plan.target}`: " + ", ".join(steps) + ".")
    lines.append("Then monitor every app, and write the reports.")
    return lines


def groups_production(planner: Planner, name: str) -> bool:
    return planner.incidents.groups.policy(name).production


def markdown(group: GroupPlan) -> str:
    from bot.plan import render

    head = [f"# Rollback plan of the group `{group.group}`", "", "## Order", ""]
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
