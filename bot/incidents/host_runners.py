"""The SSH connections of the incidents this process runs steps for: one runner (so one
connection per host) per incident, reused by its steps, closed when the incident ends or has
been idle a while."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.config.apps_file import AppConfig
from bot.ports import HostRunner

RunnerFactory = Callable[[AppConfig], HostRunner]
RUNNER_IDLE = 600.0  # seconds an incident's SSH connections may stay open unused


class HostRunners:
    def __init__(self, factory: RunnerFactory) -> None:
        self.factory = factory
        self._idle: dict[str, tuple[HostRunner, float]] = {}

    async def take(self, incident_id: str, app: AppConfig) -> HostRunner:
        """The incident's runner (its own, kept from its last step, or a new one); closes the
        runners of other incidents idle for longer than `RUNNER_IDLE`."""
        now = time.monotonic()
        for other, (idle, since) in list(self._idle.items()):
            if other != incident_id and now - since > RUNNER_IDLE:
                del self._idle[other]
                await idle.close()
        cached = self._idle.pop(incident_id, None)
        return cached[0] if cached is not None else self.factory(app)

    def give_back(self, incident_id: str, runner: HostRunner) -> None:
        self._idle[incident_id] = (runner, time.monotonic())

    async def close(self, incident_id: str) -> None:
        cached = self._idle.pop(incident_id, None)
        if cached is not None:
            await cached[0].close()

    async def aclose(self) -> None:
        for incident_id in list(self._idle):
            await self.close(incident_id)
