"""What an incident asks of the deploy watch (`bot.incidents.service.WatchHooks`): read and
written in the watch's store alone, so that it exists before the incident service and the watch
service, which opens incidents, can be built after both."""

from __future__ import annotations

import logging

from bot.watch.ports import WatchStore
from bot.workflow.baseline import Baseline
from bot.workflow.quarantine import Quarantine

log = logging.getLogger(__name__)


class IncidentHooks:
    def __init__(self, store: WatchStore) -> None:
        self.store = store

    async def baseline_for(self, app: str) -> Baseline | None:
        """How the app did before its latest deploy: what a rollback is judged against."""
        latest = await self.store.latest(app)
        if latest is None:
            return None
        # The deploy's time too: the team's metrics are read then, for "before the bad deploy".
        at = latest.deploy.at
        known = latest.baseline or Baseline(version=latest.last_good or "", measured_at=at)
        return known.model_copy(update={"deployed_at": at})

    async def quarantine(self, q: Quarantine) -> None:
        await self.store.quarantine(q)

    async def release(self, app: str, version: str, by: str) -> Quarantine | None:
        held = await self.store.release(app, version)
        if held is not None:
            log.info("%s %s released from quarantine by %s", app, version, by)
        return held
