"""What happens once an incident has ended: the app's lock released, the app frozen and the
version rolled back from quarantined when something was rolled back, its SSH connections closed,
the report of an abort written, those told of the start told of the end."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.config.apps_file import AppsFile
from bot.ports import Directory, Freeze, Notifier, Repos, Store
from bot.workflow.messages import Mark, message, words
from bot.workflow.messages import Status as MarkStatus
from bot.workflow.model import Incident, Status, StepId, StepStatus
from bot.workflow.quarantine import Quarantine

log = logging.getLogger(__name__)


class Quarantines(Protocol):
    """The part of the deploy watch's hooks (`service.WatchHooks`) an ended incident uses."""

    async def quarantine(self, q: Quarantine) -> None: ...


class Ending:
    def __init__(
        self,
        *,
        apps: AppsFile,
        store: Store,
        notifier: Notifier,
        repos: Repos,
        watch: Quarantines | None,
        ended: Callable[[str], Awaitable[None]] | None,
        people: Directory | None = None,
        left: Callable[[Incident], Awaitable[None]] | None = None,
    ) -> None:
        self.apps, self.store, self.notifier, self.repos = apps, store, notifier, repos
        self.watch = watch
        self.people = people
        # Told when an incident ends, after its freeze: its SSH connections are closed
        # (`HostRunners.close`).
        self.ended = ended
        # What the incident left on its hosts, removed (`left_copies.LeftCopies.remove`).
        self.left = left

    async def finished(self, incident: Incident) -> None:
        # The lock goes first: nothing below (Slack pacing, a Redis hiccup) may keep the app held.
        await self.store.release_lock(incident.app, incident.id)
        await self.notifier.flush(incident)
        rolled_back = any(
            incident.step(s).status is StepStatus.SUCCEEDED
            for s in (StepId.REDEPLOY, StepId.DB_ROLLBACK)
        )
        if rolled_back:
            link = incident.thread.permalink if incident.thread else ""
            await self.store.freeze(
                Freeze(
                    app=incident.app,
                    by=incident.requested_by,
                    reason=f"rolled back to {incident.target} by incident {incident.id}: "
                    f"{incident.reason or 'no reason given'}",
                    incident=incident.id,
                    link=link,
                    at=(incident.finished_at or incident.updated_at).isoformat(),
                )
            )
            await self.notifier.say(
                incident,
                words(
                    f"❄️ `{incident.app}` is now frozen for deploys. An approver lifts it "
                    f"with `/rollback unfreeze {incident.app}` once the fix is ready."
                ),
            )
            await self._quarantine(incident, link)
        if self.left is not None:
            await self.left(incident)
        if self.ended is not None:
            await self.ended(incident.id)
        opened = incident.thread is not None and bool(incident.thread.ts)
        if incident.status in {Status.ABORTED, Status.CANCELLED} and opened:
            await self._abort_report(incident)
        told = incident.facts.prerequisites.notified_start
        if told:  # those told of the start hear of the end
            # A group's lead told every member's channels at the start: the same hear the end.
            channels, members = None, list[Incident]()
            if incident.group is not None:
                channels = told
                for member_id in incident.group.members:  # each app and how it ended
                    member = await self.store.load(member_id)
                    members += [member] if member is not None else []
            await self.notifier.stakeholders(incident, "end", channels, members)

    async def _quarantine(self, incident: Incident, link: str) -> None:
        """The version rolled back from may not come back until an approver releases it."""
        bad = incident.facts.assess.deployed
        if self.watch is None or not bad or bad == incident.target:
            return
        await self.watch.quarantine(
            Quarantine(
                app=incident.app,
                version=str(bad),
                by=incident.requested_by,
                reason=f"rolled back from by incident {incident.id}: "
                f"{incident.reason or 'no reason given'}",
                incident=incident.id,
                link=link,
                at=incident.finished_at or incident.updated_at,
            )
        )
        await self.notifier.say(
            incident,
            words(
                f"⛔ `{bad}` is quarantined: `GET /api/freeze/{incident.app}?version={bad}` "
                f"answers 423 until an approver runs `/rollback release {incident.app} {bad}`."
            ),
        )

    async def _abort_report(self, incident: Incident) -> None:
        """The runbook's report is always written, an aborted rollback's most of all; a group's
        once, by the last of its members to end, for every app."""
        from bot.steps import report

        try:
            if incident.group is not None:
                members = [await self.store.load(i) for i in incident.group.members]
                ended = [m for m in members if m is not None and not m.status.open]
                if len(ended) < len(members):
                    return  # the last member to end writes the group's one report
                if not await self.store.first_time(f"group-report:{incident.group.lead}"):
                    return
                timelines = [await self.store.timeline(m.id) for m in ended]
                published = await report.publish_group(
                    incident, ended, timelines, self.apps, self.notifier, self.repos, self.people
                )
            else:
                published = await report.publish(
                    incident,
                    self.apps,
                    await self.store.timeline(incident.id),
                    self.notifier,
                    self.repos,
                    self.people,
                )
        except Exception:
            log.exception("incident %s: the report of the abort could not be written", incident.id)
            await self.notifier.say(
                incident,
                message(Mark(MarkStatus.WARN), " The incident report could not be written."),
            )
            return

        def change(current: Incident) -> Incident:
            current.facts.store(published.facts)
            return current

        await self.store.update(incident.id, change)
