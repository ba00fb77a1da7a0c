"""The SSH connections of the incidents this process runs steps for: one runner (so one
connection per host) per incident, reused by its steps, closed when the incident ends (here or
in another process) or has been idle a while."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.config.apps_file import AppConfig
from bot.ports import HostRunner, Store

log = logging.getLogger(__name__)
RunnerFactory = Callable[[AppConfig], HostRunner]
RUNNER_IDLE = 600.0  # seconds an incident's SSH connections may stay open unused
# Seconds between looks at the kept runners: an incident may end in another process (an Abort
# taken by the web process), and only the store tells this one so.
RUNNER_REAP = 5.0
StillOpen = Callable[[str], Awaitable[bool]]


async def _always_open(incident_id: str) -> bool:
    return True


def open_in(store: Store) -> StillOpen:
    """Whether an incident is still open, as the store says (it may have ended elsewhere)."""

    async def still_open(incident_id: str) -> bool:
        incident = await store.load(incident_id)
        return incident is not None and incident.status.open

    return still_open


class HostRunners:
    """A runner in use by a step is out of this pool, so nothing closes it under the step."""

    def __init__(self, factory: RunnerFactory, still_open: StillOpen = _always_open) -> None:
        self.factory = factory
        self.still_open = still_open
        self._idle: dict[str, tuple[HostRunner, float]] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def take(self, incident_id: str, app: AppConfig) -> HostRunner:
        """The incident's runner: its own, kept from its last step, or a new one."""
        cached = self._idle.pop(incident_id, None)
        return cached[0] if cached is not None else self.factory(app)

    async def give_back(self, incident_id: str, runner: HostRunner) -> None:
        """Kept for the incident's next step, which then needs no new connection."""
        kept = self._idle.pop(incident_id, None)
        if kept is not None and kept[0] is not runner:
            await kept[0].close()  # two runs of one incident at once here: one runner is enough
        self._idle[incident_id] = (runner, time.monotonic())
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        """While runners are kept: close those whose incident has ended, wherever it ended, and
        those idle for `RUNNER_IDLE` (their next step, if any, connects again)."""
        while self._idle:
            await asyncio.sleep(RUNNER_REAP)
            for incident_id, kept in list(self._idle.items()):
                try:
                    done = await self._done_with(incident_id, kept[1])
                    if done and self._idle.get(incident_id) is kept:  # no step took it since
                        await self.close(incident_id)
                except Exception:  # the store away: kept, looked at again next round
                    log.debug("runner of %s kept: its incident cannot be read", incident_id)

    async def _done_with(self, incident_id: str, since: float) -> bool:
        if time.monotonic() - since > RUNNER_IDLE:
            return True
        return not await self.still_open(incident_id)

    async def close(self, incident_id: str) -> None:
        cached = self._idle.pop(incident_id, None)
        if cached is not None:
            await cached[0].close()

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for incident_id in list(self._idle):
            await self.close(incident_id)
