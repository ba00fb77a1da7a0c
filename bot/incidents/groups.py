"""A release group rolled back as one incident (`/rollback GROUP`): opening it and keeping its
members in step.

The group is N member incidents, one per app, each a normal incident (its own steps, facts,
fencing, exactly-once database downgrade, resume after a killed worker), all in ONE thread: the
lead's (the first app's), whose parent message shows a row per app under each runbook step.
Their app locks are taken in one write or not at all. After every transition of a member the
coordinator (`sync`) applies what the pure `bot.workflow.group_flow.moves` says.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from bot.config.apps_file import AppConfig, AppsFile
from bot.incidents.app_locks import AppLocks
from bot.ports import Notifier, Store
from bot.telemetry.metrics import INCIDENTS_OPENED
from bot.workflow.baseline import Baseline
from bot.workflow.errors import UserFacingError
from bot.workflow.group import (
    GroupPolicy,
    Member,
    downgrades,
    owned,
    shared_with,
    step_order,
    when_words,
)
from bot.workflow.group_flow import moves, rows
from bot.workflow.input_checks import check_reason
from bot.workflow.machine import Begin, Cancel, Event
from bot.workflow.messages import ChannelRef, message, of_whole_group, para, words
from bot.workflow.model import GroupRef, Incident, StepRecord, StepStatus
from bot.workflow.plan import PlanBasis, plan_facts
from bot.workflow.policy import Actor, Policy, Right
from bot.workflow.steps import DB_STEPS, ORDER
from bot.workflow.version import Version


class Baselines(Protocol):
    """How an app did before the deploy being rolled back (the deploy watch), if known."""

    async def baseline_for(self, app: str) -> Baseline | None: ...


class Service(Protocol):
    """The part of the incident service (`bot.incidents.service`) a group uses."""

    apps: AppsFile
    store: Store
    notifier: Notifier
    locks: AppLocks

    @property
    def watch(self) -> Baselines | None: ...

    async def apply(self, incident_id: str, event: Event, *, who: str = "rewind") -> Incident: ...

    async def check_version_exists(self, app: AppConfig, version: Version) -> None: ...


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupRequest:
    group: str
    reason: str
    actor: Actor
    pins: tuple[tuple[str, Version], ...] = ()  # app=VERSION picked by the person
    source: str = "slack"
    major: bool = False
    ids: tuple[str, ...] = field(default=())  # the members' incident ids (tests, plans)
    # `Run this plan`: what each member's plan depended on (app, basis), so that each
    # member's Assess says what changed since.
    bases: tuple[tuple[str, PlanBasis], ...] = ()


class Groups:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.apps = service.apps
        self.store = service.store

    # ---- checks -----------------------------------------------------------------------

    def members(self, name: str) -> list[AppConfig]:
        group = self.apps.group(name)
        if group is None:
            raise UserFacingError(f"I don't know a group called `{name}`.")
        return group

    def order(self, name: str) -> list[Member]:
        """The group's apps as the pure core sees them, with whether each keeps the release
        it is rolled back from (`deploy.releases` of 2 or more: pruning keeps it) and whether
        its hosts keep a git checkout (a scratch copy of the deployed version can be made)."""
        return [
            Member(
                app.name,
                app.database is not None,
                app.database.name if app.database else None,
                keeps_releases=app.deploy.keeps_releases,
                checkout=app.deploy.checkout,
            )
            for app in self.members(name)
        ]

    def policy(self, name: str) -> GroupPolicy:
        return GroupPolicy(name, tuple(_policy(app) for app in self.members(name)))

    def check_request(self, req: GroupRequest) -> list[AppConfig]:
        """Everything that needs neither the repo nor Redis."""
        apps = self.members(req.group)
        names = [a.name for a in apps]
        for app, _ in req.pins:
            if app not in names:
                raise UserFacingError(
                    f"`{app}` is not an app of the group `{req.group}` "
                    f"({', '.join(f'`{n}`' for n in names)})."
                )
        if not req.reason.strip():
            raise UserFacingError(
                "What broke? The runbook asks to confirm the issue first: add a reason, e.g. "
                f"`/rollback {req.group} checkout returns 500`."
            )
        check_reason(req.reason)
        if reason := self.policy(req.group).refuse(req.actor, Right.OPERATE):
            raise UserFacingError(reason)
        return apps

    # ---- opening ----------------------------------------------------------------------

    async def open(self, req: GroupRequest) -> Incident:
        apps = self.check_request(req)
        await self._refuse_if_run(req)
        pins = dict(req.pins)
        for app in apps:  # a Redis read per app spares the git work below
            holder_id = await self.store.lock_holder(app.name)
            holder = await self.store.load(holder_id) if holder_id else None
            if holder is not None and holder.status.open:
                raise await self._busy(app.name, holder.id)
            if app.name in pins:
                await self.service.check_version_exists(app, pins[app.name])
        ids = list(req.ids) or [secrets.token_hex(3) for _ in apps]
        tokens = await self._lock_all(apps, ids)
        try:
            members = self._members(req, apps, ids, tokens)
            for member in members:
                if self.service.watch is not None:
                    member.baseline = await self.service.watch.baseline_for(member.app)
                await self.store.create(member)
                INCIDENTS_OPENED.labels(app=member.app).inc()
        except BaseException:
            for app, incident_id in zip(apps, ids, strict=True):
                await self.store.release_lock(app.name, incident_id)
            raise
        lead = members[0]
        try:
            for member in members:
                await self.store.audit(
                    member.id, req.actor.user, "opened",
                    f"{member.app} {member.requested_version or '(auto)'} in group {req.group}",
                )  # fmt: skip
            thread = await self.service.notifier.open_thread(lead)
        except BaseException:
            await self._cancel_all(members, req.actor)
            raise
        if not thread.ts:
            await self._cancel_all(members, req.actor)
            raise UserFacingError(
                message(
                    "I could not post in ",
                    ChannelRef(apps[0].incident_channel),
                    f", the incident channel of `{apps[0].name}`: invite me there "
                    "(`/invite @Rewind`), then try again. Nothing was started.",
                )
            )
        for member in members:

            def change(current: Incident) -> Incident:
                current.thread = thread
                return current

            await self.store.update(member.id, change)
        for down in downgrades(self.order(req.group)):
            if said := when_words(down):  # when each shared database is downgraded, and why
                await self.service.notifier.say(lead.model_copy(update={"thread": thread}),
                                                of_whole_group(words(said)))  # fmt: skip
        for member in members:
            await self.service.apply(member.id, Begin(), who=req.actor.user)
        found = await self.store.load(lead.id)
        assert found is not None
        return found

    async def _refuse_if_run(self, req: GroupRequest) -> None:
        """A plan's ids are the members' incident ids: a plan runs once."""
        for incident_id in req.ids:
            if await self.store.load(incident_id) is not None:
                raise UserFacingError(
                    f"This plan was already run: incident `{req.ids[0]}` (the group "
                    f"`{req.group}`). `/rollback status {req.group}` shows where it stands."
                )

    async def _lock_all(self, apps: list[AppConfig], ids: list[str]) -> list[int]:
        holders = [(app.name, incident_id) for app, incident_id in zip(apps, ids, strict=True)]
        for _ in range(2):
            got = await self.store.acquire_locks(holders)
            if isinstance(got, list):
                return got
            app, holder_id = got
            holder = await self.store.load(holder_id)
            if holder is not None and holder.status.open:
                raise await self._busy(app, holder_id)
            await self.store.release_lock(app, holder_id)  # left by an incident that ended
        raise UserFacingError("The group's apps are busy; try again in a moment.")

    async def _busy(self, app: str, holder_id: str) -> UserFacingError:
        busy = await self.service.locks.busy_message(app, holder_id)
        return UserFacingError(
            message(
                para(
                    "Nothing was started: the apps of a group are locked together or not at "
                    f"all, and `{app}` is busy."
                ),
                *busy.blocks,
            )
        )

    def _members(
        self, req: GroupRequest, apps: list[AppConfig], ids: list[str], tokens: list[int]
    ) -> list[Incident]:
        pins, bases = dict(req.pins), dict(req.bases)
        order = self.order(req.group)
        production = self.policy(req.group).production
        out: list[Incident] = []
        for app, incident_id, token in zip(apps, ids, tokens, strict=True):
            # The owner of a shared database that keeps releases or a git checkout downgrades
            # it after its own redeploy, in its kept release or a scratch copy: its steps are
            # stored in that order (so an incident keeps the order it was opened with).
            steps = [StepRecord(id=s) for s in step_order(ORDER, owned(order, app.name))]
            owner = shared_with(order, app.name)
            if owner is not None:
                db = app.database.name if app.database else ""
                for rec in steps:
                    if rec.id in DB_STEPS:
                        rec.status = StepStatus.SKIPPED
                        rec.summary = f"shared database `{db}`: downgraded once, by `{owner}`"
            out.append(
                Incident(
                    id=incident_id,
                    app=app.name,
                    environment=app.environment,
                    production_env=app.production,
                    requested_version=str(pins[app.name]) if app.name in pins else None,
                    reason=req.reason,
                    requested_by=req.actor.user,
                    steps=steps,
                    lock_token=token,
                    major=req.major,
                    facts=plan_facts(bases.get(app.name)),
                    group=GroupRef(
                        name=req.group,
                        lead=ids[0],
                        members=ids,
                        apps=[a.name for a in apps],
                        production=production,
                    ),
                )
            )
        return out

    async def _cancel_all(self, members: list[Incident], actor: Actor) -> None:
        for member in members:
            with contextlib.suppress(UserFacingError):  # already stopped with its group
                await self.service.apply(member.id, Cancel(actor), who="rewind")

    # ---- keeping the members in step --------------------------------------------------

    async def sync(self, incident: Incident) -> None:
        """After a member's transition: let the members past their holds as the group allows,
        stop them all when one was aborted, and show every member in the lead's parent."""
        group = incident.group
        if group is None:
            return
        members = [m for m in [await self.store.load(i) for i in group.members] if m]
        # The lead's rows first: a question the moves open (the group's decision) shows what
        # every member's Assess found, the last one's included.
        await self._show(group.lead, members)
        for move in moves(members):
            try:
                await self.service.apply(move.incident, move.event, who="rewind (group)")
            except UserFacingError as exc:  # another process made the same move first
                log.info("group %s: move on %s dropped: %s", group.name, move.incident, exc)
        members = [m for m in [await self.store.load(i) for i in group.members] if m]
        lead = await self._show(group.lead, members)
        if lead is not None:
            await self.service.notifier.update_parent(lead)

    async def _show(self, lead: str, members: list[Incident]) -> Incident | None:
        """Every member's rows in the lead (what its parent and its questions show)."""
        shown = rows(members)

        def change(current: Incident) -> Incident:
            assert current.group is not None
            current.group.rows = shown
            return current

        return await self.store.update(lead, change)


def _policy(app: AppConfig) -> Policy:
    return Policy(app.name, app.production, frozenset(app.operators), frozenset(app.approvers))
