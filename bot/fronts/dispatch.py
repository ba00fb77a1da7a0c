"""What each `/rollback …` command does, for every front (Slack, the terminal, …).

A front parses the text (`bot.fronts.command.parse`), finds who is asking (an `Actor`), calls
`Dispatcher.run`, and renders the `Reply` it gets back in its own words and markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from bot.config.apps_file import AppsFile
from bot.config.apps_problems import did_you_mean
from bot.fronts.command import HELP, Command
from bot.incidents.groups import GroupRequest
from bot.incidents.service import IncidentService, OpenRequest, policy_for
from bot.plan.build import PLAN_TTL, Planner
from bot.plan.group import plan_group
from bot.ports import Store
from bot.workflow.errors import UserFacingError
from bot.workflow.input_checks import check_reason
from bot.workflow.model import Incident
from bot.workflow.plan import GroupPlan, Plan
from bot.workflow.policy import Actor, Right
from bot.workflow.version import Version


@dataclass(frozen=True)
class Opened:
    incident: Incident
    version: Version | None


@dataclass(frozen=True)
class Listing:
    incidents: Sequence[Incident]
    empty: str  # what to say when there are none


@dataclass(frozen=True)
class StatusOf:
    incident: Incident


@dataclass(frozen=True)
class Cancelled:
    incident_id: str


@dataclass(frozen=True)
class Unfrozen:
    app: str
    by: str  # user id
    was_frozen: bool


@dataclass(frozen=True)
class NoIncidents:
    app: str


@dataclass(frozen=True)
class Released:
    app: str
    version: Version
    by: str  # user id
    incident_id: str  # the incident that quarantined it; "" when it was not quarantined


@dataclass(frozen=True)
class PlanMade:
    """A plan, made and kept for `Run this plan`; the front shows it (Slack posts it)."""

    plan: Plan


@dataclass(frozen=True)
class GroupPlanMade:
    """The plan of a release group: each member's plan and the order they run in."""

    group: GroupPlan


@dataclass(frozen=True)
class OpenedFromPlan:
    incident: Incident
    plan: Plan


@dataclass(frozen=True)
class GroupOpenedFromPlan:
    """`Run this plan` of a group: the lead's incident, and the plan each member runs."""

    incident: Incident
    group: GroupPlan


Reply = (
    Opened
    | Listing
    | StatusOf
    | Cancelled
    | Unfrozen
    | NoIncidents
    | Released
    | PlanMade
    | GroupPlanMade
    | OpenedFromPlan
    | GroupOpenedFromPlan
)


def group_request(cmd: Command, actor: Actor, source: str) -> GroupRequest:
    return GroupRequest(cmd.app, cmd.reason, actor, cmd.pins, source=source, major=cmd.major)


def planned(group: GroupPlan, actor: Actor, source: str = "slack") -> GroupRequest:
    """The group as its plan has it: each app pinned to its target, under its plan's id, with
    what its plan depended on."""
    return GroupRequest(
        group.group,
        group.reason or f"rollback as planned in plan {group.id}",
        actor,
        # stored text: parsed as a typed one is
        tuple((p.app, Version.parse(p.target)) for p in group.plans),
        source=source,
        ids=tuple(p.id for p in group.plans),
        bases=tuple((p.app, p.basis) for p in group.plans),
    )


def check_pins(apps: AppsFile, group: str, pins: Sequence[tuple[str, Version]]) -> None:
    """Each `APP=VERSION` of `/rollback GROUP …` names an app of that group (every front)."""
    members = [a.name for a in apps.group(group) or []]
    listed = ", ".join(f"`{n}`" for n in members)
    for name, _ in pins:
        if name in members:
            continue
        if apps.app(name) is None:
            hint = did_you_mean(name, members) or did_you_mean(name, sorted(apps.apps))
            raise UserFacingError(
                f"I don't know an app called `{name}`"
                + (f": {hint}" if hint else ".")
                + f" The apps of the group `{group}` are {listed}."
            )
        raise UserFacingError(
            f"`{name}` is not an app of the group `{group}` ({listed}): pick versions for "
            f"its apps only, e.g. `{members[0] if members else 'APP'}=VERSION`."
        )


def check_start(incidents: IncidentService, cmd: Command) -> None:
    """Bad input is refused before anything runs; rights are checked once groups are known."""
    if incidents.apps.group(cmd.app) is not None:
        if cmd.version is not None:
            raise UserFacingError(
                f"`{cmd.app}` is a group: pick versions per app, e.g. "
                f"`/rollback {cmd.app} APP={cmd.version} reason…`."
            )
        incidents.groups.members(cmd.app)
        check_pins(incidents.apps, cmd.app, cmd.pins)
        return
    incidents.app(cmd.app)
    if cmd.pins:
        raise UserFacingError(
            f"`{cmd.app}` is an app, not a group: `/rollback {cmd.app} VERSION reason…`."
        )
    if not cmd.reason.strip():
        version = f" {cmd.version}" if cmd.version else ""
        raise UserFacingError(
            "What broke? The runbook asks to confirm the issue first: add a reason, e.g. "
            f"`/rollback {cmd.app}{version} checkout returns 500`."
        )
    check_reason(cmd.reason)


def check_plan(incidents: IncidentService, cmd: Command) -> None:
    """The fast checks of `/rollback plan`: a known app or group (the version was parsed)."""
    if incidents.apps.group(cmd.app) is not None:
        incidents.groups.members(cmd.app)
        check_pins(incidents.apps, cmd.app, cmd.pins)
        return
    incidents.app(cmd.app)
    if cmd.pins:
        raise UserFacingError(
            f"`{cmd.app}` is an app, not a group: `/rollback plan {cmd.app} VERSION`."
        )


class Dispatcher:
    def __init__(
        self, incidents: IncidentService, store: Store, planner: Planner, source: str = "slack"
    ) -> None:
        self.incidents = incidents
        self.planner = planner
        self.store = store
        self.source = source

    async def run(self, cmd: Command, actor: Actor) -> Reply:
        match cmd.kind:
            case "start" if self.incidents.apps.group(cmd.app) is not None:
                check_start(self.incidents, cmd)
                group = group_request(cmd, actor, self.source)
                return Opened(await self.incidents.groups.open(group), None)
            case "start":
                check_start(self.incidents, cmd)
                request = OpenRequest(
                    cmd.app, cmd.version, cmd.reason, actor, source=self.source, major=cmd.major
                )
                return Opened(await self.incidents.open(request), cmd.version)
            case "list":
                return Listing(await self.store.recent_incidents(15), "No incidents.")
            case "status":
                return await self.status(cmd.target)
            case "cancel":
                found = await self.store.load(cmd.target)
                if found is None:
                    raise UserFacingError(
                        f"No incident `{cmd.target}`. `/rollback list` shows them."
                    )
                await self.incidents.cancel(found.id, actor)
                return Cancelled(found.id)
            case "unfreeze":
                app = self.incidents.app(cmd.target)
                if reason := policy_for(app).refuse(actor, Right.APPROVE):
                    raise UserFacingError(reason)
                freeze = await self.store.unfreeze(app.name)
                return Unfrozen(app.name, actor.user, was_frozen=freeze is not None)
            case "release":
                return await self.release(cmd, actor)
            case "plan" if self.incidents.apps.group(cmd.app) is not None:
                check_plan(self.incidents, cmd)
                made = await plan_group(self.planner, cmd.app, cmd.pins, actor, cmd.reason)
                return GroupPlanMade(made)
            case "plan":
                plan = await self.planner.plan(cmd.app, cmd.version, actor, reason=cmd.reason)
                return PlanMade(plan)
        raise UserFacingError(HELP)

    async def run_plan(self, plan_id: str, actor: Actor) -> OpenedFromPlan:
        """`Run this plan`: the incident the plan describes, under the plan's id; its Assess
        says what changed since the plan was made."""
        raw = await self.store.load_plan(plan_id)
        if raw is None:
            raise UserFacingError(
                f"Plan `{plan_id}` is no longer kept (plans last {PLAN_TTL // 3600} hours): make "
                "a new one with `/rollback plan APP`."
            )
        plan = Plan.model_validate_json(raw)
        request = OpenRequest(
            plan.app,
            Version.parse(plan.target),  # stored text: parsed as a typed one is
            plan.reason or f"rollback as planned in plan {plan.id}",
            actor,
            source=self.source,
            plan=plan.basis,
            incident_id=plan.id,
        )
        return OpenedFromPlan(await self.incidents.open(request), plan)

    async def run_group_plan(self, plan_id: str, name: str, actor: Actor) -> GroupOpenedFromPlan:
        """`Run this plan` of a group: `/rollback GROUP` with each app pinned to its planned
        target, each member under its own plan's id with that plan's basis (so each member's
        Assess says what changed since); the same checks (rights on every member, all locks or
        none, four-eyes when a member is production)."""
        raw = await self.store.load_plan(plan_id)
        if raw is None:
            raise UserFacingError(
                f"Plan `{plan_id}` of the group `{name}` is no longer kept (plans last "
                f"{PLAN_TTL // 3600} hours): make a new one with `/rollback plan {name}`, or run "
                f"the group without one: `/rollback {name} reason…`."
            )
        try:
            group = GroupPlan.model_validate_json(raw)
        except ValidationError:
            raise UserFacingError(f"`{plan_id}` is not the plan of a group.") from None
        self._check_members(group)
        request = planned(group, actor, self.source)
        return GroupOpenedFromPlan(await self.incidents.groups.open(request), group)

    def _check_members(self, group: GroupPlan) -> None:
        """The apps file may have changed the group since: its plan would not be its rollback."""
        now = [a.name for a in self.incidents.groups.members(group.group)]
        if now != [p.app for p in group.plans]:
            listed = ", ".join(f"`{n}`" for n in now)
            raise UserFacingError(
                f"The group `{group.group}` changed since plan `{group.id}` was made (its apps "
                f"are now {listed}): make a new plan with `/rollback plan {group.group}`. "
                "Nothing was started."
            )

    async def release(self, cmd: Command, actor: Actor) -> Reply:
        app = self.incidents.app(cmd.app)
        if reason := policy_for(app).refuse(actor, Right.APPROVE):
            raise UserFacingError(reason)
        if self.incidents.watch is None or cmd.version is None:
            raise UserFacingError("Quarantine is not available here.")
        held = await self.incidents.watch.release(app.name, str(cmd.version), actor.user)
        if held is None:
            return Released(app.name, cmd.version, actor.user, "")
        await self.store.audit(held.incident, actor.user, f"released {cmd.version}", "quarantine")
        return Released(app.name, cmd.version, actor.user, held.incident)

    async def status(self, target: str) -> Reply:
        if not target:
            return Listing(await self.store.open_incidents(), "No open incidents.")
        incident = await self.store.load(target)
        if incident is None and self.incidents.apps.group(target) is not None:
            recent = await self.store.recent_incidents(50)
            members = [i for i in recent if i.group is not None and i.group.name == target]
            newest = members[0].group if members else None
            if newest is not None:  # the group's latest incident: each app's member, in order
                latest = {i.id: i for i in members if i.group and i.group.lead == newest.lead}
                return Listing([latest[i] for i in newest.members if i in latest], "")
            return Listing([], f"The group `{target}` has no incidents.")
        if incident is None:
            app = self.incidents.app(target)
            holder = await self.store.lock_holder(app.name)
            incident = await self.store.load(holder) if holder else None
            if incident is None:
                recent = [i for i in await self.store.recent_incidents(50) if i.app == app.name]
                if not recent:
                    return NoIncidents(app.name)
                incident = recent[0]
        return StatusOf(incident)

    async def gate_of(self, target: str) -> Incident | None:
        """The incident `target` names (by id or app) when it waits for a click."""
        incident = await self.store.load(target)
        if incident is None:
            holder = await self.store.lock_holder(target)
            incident = await self.store.load(holder) if holder else None
        return incident if incident is not None and incident.gate is not None else None
