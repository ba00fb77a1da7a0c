"""The app's lock as an opening incident takes it: refused while another incident holds the app
(saying whose it is and where to follow it), taken over from an incident that has ended."""

from __future__ import annotations

import asyncio
import logging

from bot.ports import Store
from bot.workflow.errors import UserFacingError
from bot.workflow.messages import Inline, Link, Mention, Message, message, words
from bot.workflow.model import Incident

log = logging.getLogger(__name__)


class AppLocks:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def acquire(self, app: str, incident_id: str) -> int:
        """The app's lock, taking it over from a holder that has ended (a crash mid-finish)."""
        for _ in range(2):
            token = await self.store.acquire_lock(app, incident_id)
            if isinstance(token, int):
                return token
            holder = await self._lock_holder_incident(token)
            if holder is not None and holder.status.open:
                raise UserFacingError(await self.busy_message(app, token))
            log.warning("app %s: lock of ended incident %s released", app, token)
            await self.store.release_lock(app, token)
        raise UserFacingError(f"`{app}` is busy; try again in a moment.")

    async def _lock_holder_incident(self, incident_id: str) -> Incident | None:
        """The incident holding a lock. One opened a moment ago takes the lock before it is
        stored: it gets two seconds to appear before the lock counts as left by a crash."""
        for _ in range(20):
            holder = await self.store.load(incident_id)
            if holder is not None:
                return holder
            await asyncio.sleep(0.1)
        return None

    async def refuse_if_busy(self, app: str) -> None:
        holder_id = await self.store.lock_holder(app)
        holder = await self.store.load(holder_id) if holder_id else None
        if holder is not None and holder.status.open:
            raise UserFacingError(await self.busy_message(app, holder.id))

    async def busy_message(self, app: str, holder_id: str) -> Message:
        holder = await self.store.load(holder_id)
        if holder is None:
            return words(f"`{app}` already has an open incident `{holder_id}`.")
        link = holder.thread.permalink if holder.thread else ""
        where: tuple[Inline, ...] = (" ", Link(link, "thread")) if link else ()
        return message(
            f"`{app}` already has an open incident `{holder.id}`, started by ",
            Mention(holder.requested_by),
            f" ({holder.status.value}).",
            *where,
            f" Follow it there, or `/rollback cancel {holder.id}` first.",
        )
