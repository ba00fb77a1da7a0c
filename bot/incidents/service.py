"""The incident service: opens incidents, applies events to them through the store, and carries
out the effects.

The web process calls `open`, `answer` and `cancel`; workers apply their steps' results through
`apply` (`bot.incidents.step_runner`). Every transition is written to the store before its
effects run, so a click that lands a few milliseconds after a button appeared always finds the
incident waiting for it, and any process may die in between.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.config.apps_file import AppConfig, AppsFile
from bot.incidents.app_locks import AppLocks
from bot.incidents.ending import Ending
from bot.incidents.groups import GroupRequest, Groups
from bot.incidents.member_names import named_members
from bot.ports import Directory, Notifier, Repos, StepQueue, Store
from bot.telemetry.logs import INCIDENT
from bot.telemetry.metrics import INCIDENTS_ENDED, INCIDENTS_OPENED
from bot.workflow import said
from bot.workflow.baseline import Baseline
from bot.workflow.errors import UserFacingError
from bot.workflow.input_checks import check_reason
from bot.workflow.machine import (
    Answer,
    AskGate,
    Begin,
    Cancel,
    Effect,
    Event,
    Finished,
    Rejected,
    RunStep,
    Say,
    StepFailed,
    StepInterrupted,
    StepStarted,
    StepSucceeded,
    new_steps,
    transition,
)
from bot.workflow.messages import ChannelRef, message
from bot.workflow.model import GateKind, Incident, Status, StepId, StepStatus
from bot.workflow.plan import PlanBasis, plan_facts
from bot.workflow.policy import Actor, Policy, Right, Rules
from bot.workflow.quarantine import Quarantine
from bot.workflow.render_text import plain
from bot.workflow.steps import SPECS
from bot.workflow.version import Version

log = logging.getLogger(__name__)
UNKNOWN_INCIDENT = "unknown"  # the audit trail of clicks that name no incident


@dataclass(frozen=True)
class OpenRequest:
    app: str
    version: Version | None  # parsed by the front
    reason: str
    actor: Actor
    source: str = "slack"  # or "terminal", "watch" (a click on a proposal), "auto"
    major: bool = False
    plan: PlanBasis | None = None  # `Run this plan`: what the plan depended on
    incident_id: str | None = None  # a plan's id: its branch and backup names hold it


class WatchHooks(Protocol):
    """What incidents ask of the deploy watch (`bot.watch`), when there is one."""

    async def baseline_for(self, app: str) -> Baseline | None: ...

    async def quarantine(self, q: Quarantine) -> None: ...

    async def release(self, app: str, version: str, by: str) -> Quarantine | None: ...


EventKind = Literal[
    "incident.opened", "incident.step_done", "incident.completed", "incident.aborted"
]


class IncidentEvents(Protocol):
    """Told of an incident's milestones (outgoing webhooks); must never raise or block."""

    async def incident_event(
        self, incident: Incident, kind: EventKind, step: StepId | None = None, summary: str = ""
    ) -> None: ...


def policy_for(app: AppConfig) -> Policy:
    return Policy(
        app=app.name,
        production=app.production,
        operators=frozenset(app.operators),
        approvers=frozenset(app.approvers),
    )


def new_incident_id() -> str:
    return secrets.token_hex(3)


class IncidentService:
    def __init__(
        self,
        *,
        apps: AppsFile,
        store: Store,
        notifier: Notifier,
        queue: StepQueue,
        repos: Repos,
        watch: WatchHooks | None = None,
        events: IncidentEvents | None = None,
        ended: Callable[[str], Awaitable[None]] | None = None,
        people: Directory | None = None,
        left: Callable[[Incident], Awaitable[None]] | None = None,
    ) -> None:
        self.apps = apps
        self.watch = watch
        self.events = events
        self.store = store
        # Every message of an incident enters its thread here (steps, the runner, the ending):
        # in a group's one thread, each names its app.
        self.notifier: Notifier = named_members(notifier)
        notifier = self.notifier
        self.queue = queue
        self.repos = repos
        self.people = people  # who the report names, beyond the apps file's `people:`
        self.locks = AppLocks(store)
        self.groups = Groups(self)  # `/rollback GROUP`: its members kept in step after each change
        self.ending = Ending(
            apps=apps,
            store=store,
            notifier=notifier,
            repos=repos,
            watch=watch,
            ended=ended,
            people=people,
            left=left,
        )

    # ---- checks shared by every front ---------------------------------------------------

    def app(self, name: str) -> AppConfig:
        app = self.apps.app(name)
        if app is None:
            known = ", ".join(f"`{n}`" for n in sorted(self.apps.apps)) or "none"
            raise UserFacingError(f"I don't know an app called `{name}`. Known apps: {known}.")
        return app

    def check_request(self, req: OpenRequest) -> AppConfig:
        """Everything that needs neither the repo nor Redis: answered within Slack's 3 s."""
        app = self.app(req.app)
        if req.source == "auto":
            return app  # auto_rollback: the apps file allowed it (never for production)
        check_reason(req.reason)
        if reason := policy_for(app).refuse(req.actor, Right.OPERATE):
            raise UserFacingError(reason)
        return app

    # ---- opening ------------------------------------------------------------------------

    async def open(self, req: OpenRequest) -> Incident:
        app = self.check_request(req)
        incident_id = req.incident_id or new_incident_id()
        if req.incident_id and await self.store.load(incident_id) is not None:
            raise UserFacingError(
                f"This plan was already run: incident `{incident_id}`. "
                f"`/rollback status {incident_id}` shows where it stands."
            )
        await self.locks.refuse_if_busy(app.name)  # a Redis read spares the git work below
        if req.version is not None:
            await self.check_version_exists(app, req.version)
        INCIDENT.set(incident_id)
        token = await self.locks.acquire(app.name, incident_id)
        try:
            incident = Incident(
                id=incident_id,
                app=app.name,
                environment=app.environment,
                production_env=app.production,
                requested_version=str(req.version) if req.version else None,
                reason=req.reason,
                requested_by=req.actor.user,
                steps=new_steps(),
                lock_token=token,
                major=req.major,
                facts=plan_facts(req.plan),
                baseline=await self.watch.baseline_for(app.name) if self.watch else None,
            )
            await self.store.create(incident)
        except BaseException:
            await self.store.release_lock(app.name, incident_id)
            raise
        try:
            await self.store.audit(
                incident.id, req.actor.user, "opened", f"{req.app} {req.version or '(auto)'}"
            )
            incident.thread = await self.notifier.open_thread(incident)
        except BaseException:
            await self.apply(incident.id, Cancel(req.actor), who="rewind")
            raise
        if not incident.thread.ts:
            # Without its thread nobody would see the incident: stop before anything runs.
            await self.apply(incident.id, Cancel(req.actor), who="rewind")
            raise UserFacingError(
                message(
                    "I could not post in ",
                    ChannelRef(app.incident_channel),
                    f", the incident channel of `{app.name}`: invite me there "
                    "(`/invite @Rewind`), then try again. Nothing was started.",
                )
            )
        await self._save_thread(incident)
        INCIDENTS_OPENED.labels(app=app.name).inc()
        return await self.apply(incident.id, Begin(), who=req.actor.user)

    async def open_group(self, req: GroupRequest) -> Incident:
        """`/rollback GROUP`: every app of the group in one incident (`bot.incidents.groups`)."""
        return await self.groups.open(req)

    async def _save_thread(self, incident: Incident) -> None:
        def change(current: Incident) -> Incident:
            current.thread = incident.thread
            return current

        await self.store.update(incident.id, change)

    async def check_version_exists(self, app: AppConfig, version: Version) -> None:
        if not await self.repos.has_version(app, version):
            raise UserFacingError(
                f"`{version}` is neither a tag nor a commit of `{app.name}`'s repo. "
                "Check the version (`git tag -l` in the repo) and try again."
            )

    # ---- transitions --------------------------------------------------------------------

    async def apply(self, incident_id: str, event: Event, *, who: str = "rewind") -> Incident:
        """Load, transition, save (compare-and-set), then carry out the effects."""
        INCIDENT.set(incident_id)
        effects: list[Effect] = []
        before = Status.RUNNING

        def change(current: Incident) -> Incident:
            nonlocal effects, before
            before = current.status
            try:
                changed, effects = transition(current, event, self.rules_for(current))
            except Rejected as exc:
                raise UserFacingError(exc.message) from None
            return changed

        incident = await self.store.update(incident_id, change)
        if incident is None:
            raise UserFacingError(f"No incident `{incident_id}`.")
        if before.open and not incident.status.open:
            INCIDENTS_ENDED.labels(state=incident.status.value).inc()
        await self.store.audit(incident.id, who, _describe(event), incident.status.value)
        await self._tell_events(before, incident, event)
        await self._effects(incident, effects)
        if incident.group is None:
            await self.notifier.update_parent(incident)
        else:  # the lead's parent shows every member; the coordinator keeps them in step
            await self.groups.sync(incident)
        return incident

    def rules_for(self, incident: Incident) -> Rules:
        """Who may answer: the app's policy, or its group's (rights on every member)."""
        if incident.group is not None:
            return self.groups.policy(incident.group.name)
        return policy_for(self.app(incident.app))

    async def _tell_events(self, before: Status, incident: Incident, event: Event) -> None:
        if self.events is None:
            return
        if isinstance(event, Begin):
            await self.events.incident_event(incident, "incident.opened")
        if isinstance(event, StepSucceeded) and incident.step(event.step).status.done:
            await self.events.incident_event(
                incident, "incident.step_done", event.step, event.summary
            )
        if before.open and not incident.status.open:
            kind: EventKind = (
                "incident.completed"
                if incident.status in {Status.COMPLETED, Status.FIXED_FORWARD}
                else "incident.aborted"
            )
            await self.events.incident_event(incident, kind, summary=plain(said.outcome(incident)))

    async def answer(self, incident_id: str, answer: Answer) -> Incident:
        try:
            incident = await self.apply(incident_id, answer, who=answer.actor.user)
        except UserFacingError as exc:
            await self.audit_refusal(incident_id, answer.actor.user, answer.choice, str(exc))
            raise
        said = incident.facts.answered.get(answer.token)
        if said:
            await self.notifier.resolve_gate(incident, answer.token, said)
        return incident

    async def audit_refusal(self, incident_id: str, user: str, choice: str, why: str) -> None:
        """A refused click is part of the record: in the incident's trail, or under `unknown`
        when the button names no incident (whatever it says is cut short, never a key)."""
        user = user[:40]
        if incident_id and await self.store.load(incident_id) is not None:
            await self.store.audit(incident_id, user, f"refused {choice}", why)
        else:
            await self.store.audit(
                UNKNOWN_INCIDENT, user, f"refused {choice} on {incident_id[:40]!r}", why
            )
        log.warning("refused %s by %s on incident %r: %s", choice, user, incident_id[:40], why)

    async def cancel(self, incident_id: str, actor: Actor) -> Incident:
        return await self.apply(incident_id, Cancel(actor), who=actor.user)

    async def _effects(self, incident: Incident, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case RunStep(step=step, attempt=attempt):
                    await self.queue.enqueue_step(incident.id, step, attempt)
                case AskGate(gate=gate) if gate.kind is not GateKind.GROUP:
                    await self.notifier.ask(incident, gate)
                case Say(message=said_):
                    await self.notifier.say(incident, said_)
                case Finished():
                    await self.ending.finished(incident)

    # ---- recovery -----------------------------------------------------------------------

    async def reconcile(self) -> int:
        """Re-enqueue the step of every running incident (a restart lost no incident).

        The queue's job keys make this safe to call at any time: a job still queued or active is
        not enqueued twice, and `run_step` ignores a step that is not due.
        """
        count = 0
        synced: set[str] = set()
        for incident in await self.store.open_incidents():
            if incident.group is not None and incident.group.lead not in synced:
                # A process that died between a member's change and the group's next move
                # left the others waiting: the coordinator makes that move now.
                synced.add(incident.group.lead)
                await self.groups.sync(incident)
            rec = incident.current_step()
            opened = incident.thread is not None and bool(incident.thread.ts)
            if incident.status is Status.RUNNING and rec is not None and opened:
                attempt = rec.attempts if rec.status is StepStatus.RUNNING else rec.attempts + 1
                await self.queue.enqueue_step(incident.id, rec.id, attempt)
                count += 1
        return count


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _describe(event: Event) -> str:
    name = _CAMEL.sub(" ", type(event).__name__).lower()
    match event:
        case StepStarted(step=s) | StepSucceeded(step=s) | StepFailed(step=s):
            return f"{name}: {SPECS[s].title}"
        case StepInterrupted(step=s):
            return f"{name}: {SPECS[s].title}"
        case Answer(choice=c):
            return f"answered {c}"
    return name
