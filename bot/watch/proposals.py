"""The proposal to roll back a deploy that looks bad: posting it (and rolling back at once where
the apps file allows it), and answering its buttons (`Roll back to VERSION`, `Dismiss`).

The web process answers clicks; workers post proposals (`bot.watch.service` judges the ticks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.config.apps_file import AppConfig, AppsFile
from bot.incidents.groups import GroupRequest
from bot.incidents.service import OpenRequest, policy_for
from bot.watch.model import Answer, Watch, WatchState
from bot.watch.ports import WatchStore
from bot.workflow.errors import UserFacingError
from bot.workflow.messages import Inline, Mention, message
from bot.workflow.model import Incident, ThreadRef
from bot.workflow.policy import Actor, Right
from bot.workflow.version import Version

log = logging.getLogger(__name__)

AUTO = "rewind"  # who an automatic rollback is requested by


@dataclass(frozen=True)
class Proposal:
    """What the proposal message says, for any front to render."""

    watch_id: str
    app: str
    version: str
    minutes_since: int
    evidence: str
    last_good: str | None
    deploy_by: str = ""
    deploy_url: str = ""
    answer: Answer | None = None
    auto: bool = False


class Proposer(Protocol):
    """Where proposals appear (the app's incident channel) and are settled."""

    async def propose(self, app: AppConfig, proposal: Proposal) -> ThreadRef: ...

    async def settle(self, app: AppConfig, ref: ThreadRef, proposal: Proposal) -> None:
        """Replace the buttons with what became of the proposal."""
        ...


class IncidentOpener(Protocol):
    """Where a proposal's `Roll back` opens the incident (`bot.incidents.service`)."""

    async def open(self, req: OpenRequest) -> Incident: ...

    async def open_group(self, req: GroupRequest) -> Incident: ...


class Proposals:
    def __init__(
        self,
        *,
        apps: AppsFile,
        store: WatchStore,
        proposer: Proposer,
        incidents: IncidentOpener | None = None,
    ) -> None:
        self.apps = apps
        self.store = store
        self.proposer = proposer
        self.incidents = incidents  # None where nothing is proposed (`rewind deploy`)

    # ---- the proposal -------------------------------------------------------------------

    def proposal(self, watch: Watch, *, auto: bool = False) -> Proposal:
        since = (watch.proposed_at or datetime.now(UTC)) - watch.deploy.at
        evidence = watch.evidence
        if watch.group:
            released = ", ".join(f"`{a}`" for a in watch.release_apps)
            evidence += (
                f". It is part of release `{watch.deploy.release}` ({released}): Roll back "
                f"rolls back the group `{watch.group}`, every app in one incident"
            )
        return Proposal(
            watch_id=watch.id,
            app=watch.app,
            version=watch.deploy.version,
            minutes_since=max(int(since.total_seconds() // 60), 0),
            evidence=evidence,
            last_good=watch.last_good,
            deploy_by=watch.deploy.by,
            deploy_url=watch.deploy.url,
            answer=watch.answer,
            auto=auto,
        )

    async def propose(self, app: AppConfig, watch: Watch) -> None:
        if not await self.store.first_time(f"post:{watch.id}", ttl=60):
            return  # another worker is posting it right now
        auto = app.auto_rollback and watch.last_good is not None
        if watch.deploy.release and not watch.group:
            watch = await self._release_group(watch)
            auto = auto and not watch.group  # a group is rolled back on a person's click
        ref = await self.proposer.propose(app, self.proposal(watch, auto=auto))
        watch = await self._update(watch.id, lambda w: setattr(w, "message", ref)) or watch
        if auto:
            await self._auto_rollback(app, watch, ref)

    async def _release_group(self, watch: Watch) -> Watch:
        """The group of the app whose deploys carry this release id: the release failed."""
        release = watch.deploy.release
        group = next((g for g, apps in self.apps.groups.items() if watch.app in apps), "")
        if not group:
            return watch
        released: list[str] = []
        pins: dict[str, str] = {}
        for member in self.apps.groups[group]:
            deploys = await self.store.deploys(member, 20)
            at = next((i for i, d in enumerate(deploys) if d.release == release), None)
            if at is None:
                continue
            released.append(member)
            before = deploys[at + 1].version if at + 1 < len(deploys) else None
            if member == watch.app and watch.last_good:
                before = watch.last_good
            if before:
                pins[member] = before

        def change(w: Watch) -> None:
            w.group, w.release_apps, w.pins = group, released, pins

        return await self._update(watch.id, change) or watch

    async def _auto_rollback(self, app: AppConfig, watch: Watch, ref: ThreadRef) -> None:
        try:
            incident_id = await self._open_incident(app, watch, Actor(AUTO), auto=True)
        except UserFacingError as exc:
            # The proposal stays: a person can still click once the cause is cleared.
            watch.answer = Answer(choice="auto", user=AUTO, why=f"not started: {exc}")
            await self.proposer.settle(app, ref, self.proposal(watch, auto=False))
            return
        answer = Answer(choice="auto", user=AUTO, incident=incident_id)
        settled = await self._answer(watch.id, WatchState.ROLLING_BACK, answer)
        await self.proposer.settle(app, ref, self.proposal(settled or watch, auto=True))

    async def _open_incident(self, app: AppConfig, watch: Watch, actor: Actor, auto: bool) -> str:
        if self.incidents is None:
            raise RuntimeError("this watch service opens no incident")
        if not watch.last_good:
            raise UserFacingError(
                f"I know no good version of `{app.name}` to go back to: "
                f"`/rollback {app.name} VERSION {watch.deploy.version} looks bad` names one."
            )
        since = self.proposal(watch).minutes_since
        reason = (
            f"{watch.deploy.version} looks bad since its deploy {since} min ago: "
            f"{watch.evidence}" + (" — rolled back automatically (auto_rollback)" if auto else "")
        )
        if watch.group:
            pins = tuple((a, Version.parse(v)) for a, v in watch.pins.items())
            request = GroupRequest(watch.group, reason, actor, pins, source="watch")
            return (await self.incidents.open_group(request)).id
        incident = await self.incidents.open(
            OpenRequest(
                app.name,
                Version.parse(watch.last_good),
                reason,
                actor,
                source="watch" if not auto else "auto",
            )
        )
        return incident.id

    async def _update(self, watch_id: str, change: Callable[[Watch], object]) -> Watch | None:
        for _ in range(20):
            watch = await self.store.load(watch_id)
            if watch is None:
                return None
            change(watch)
            if await self.store.save(watch):
                return watch
        return None

    async def _answer(self, watch_id: str, state: WatchState, answer: Answer) -> Watch | None:
        def change(w: Watch) -> None:
            if w.state is not WatchState.PROPOSED:
                raise UserFacingError(f"That proposal was already answered ({w.state.value}).")
            w.state, w.answer = state, answer

        return await self._update(watch_id, change)

    # ---- web side: the buttons ----------------------------------------------------------

    async def _proposed(self, watch_id: str) -> tuple[AppConfig, Watch]:
        watch = await self.store.load(watch_id)
        if watch is None:
            raise UserFacingError("That proposal is gone (older than a week); nothing changed.")
        app = self.apps.app(watch.app)
        if app is None:
            raise UserFacingError(f"`{watch.app}` is no longer in the apps file.")
        if watch.state is not WatchState.PROPOSED:
            done = watch.answer
            by: tuple[Inline, ...] = (
                (" by ", Mention(done.user)) if done and done.user != AUTO else ()
            )
            raise UserFacingError(
                message(f"That proposal was already answered ({watch.state.value}", *by, ").")
            )
        return app, watch

    async def roll_back(self, watch_id: str, actor: Actor) -> str:
        """`Roll back to VERSION`: the normal incident, with the clicker as requester."""
        app, watch = await self._proposed(watch_id)
        incident_id = await self._open_incident(app, watch, actor, auto=False)
        answer = Answer(choice="roll_back", user=actor.user, incident=incident_id)
        settled = await self._answer(watch.id, WatchState.ROLLING_BACK, answer)
        if watch.message is not None and settled is not None:
            await self.proposer.settle(app, watch.message, self.proposal(settled))
        return incident_id

    def check_dismiss(self, app: AppConfig, actor: Actor) -> None:
        if reason := policy_for(app).refuse(actor, Right.OPERATE):
            raise UserFacingError(reason)

    async def can_dismiss(self, watch_id: str, actor: Actor) -> None:
        app, _ = await self._proposed(watch_id)
        self.check_dismiss(app, actor)

    async def dismiss(self, watch_id: str, actor: Actor, why: str) -> Watch:
        app, watch = await self._proposed(watch_id)
        self.check_dismiss(app, actor)
        why = " ".join(why.split())[:500]
        if not why:
            raise UserFacingError("Say why the deploy is fine, so the next person knows.")
        settled = await self._answer(
            watch.id, WatchState.DISMISSED, Answer(choice="dismiss", user=actor.user, why=why)
        )
        if settled is None:
            raise RuntimeError(f"watch {watch.id}: too many concurrent writers")
        log.info("watch %s of %s dismissed by %s: %s", watch.id, app.name, actor.user, why)
        await self.store.mark_bad(app.name, watch.deploy.version, bad=False)
        if settled.message is not None:
            await self.proposer.settle(app, settled.message, self.proposal(settled))
        return settled
