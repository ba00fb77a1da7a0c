"""The engine: the incident service and the step runner assembled as one object.

`service.IncidentService` opens incidents and applies events through the store;
`step_runner.StepRunner` runs a step's body on a worker and applies its result through the
service. Callers that need both (assembly, the fronts, the worker's queue) hold an `Engine`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.config.apps_file import AppConfig, AppsFile
from bot.incidents.service import IncidentEvents, IncidentService, OpenRequest, WatchHooks
from bot.incidents.step_runner import RunnerFactory, StepRunner
from bot.ports import Notifier, Repos, StepQueue, Store
from bot.steps.context import StepBody
from bot.workflow.machine import Answer, Event
from bot.workflow.model import Incident, StepId
from bot.workflow.policy import Actor
from bot.workflow.version import Version


class Engine:
    def __init__(
        self,
        *,
        apps: AppsFile,
        store: Store,
        notifier: Notifier,
        queue: StepQueue,
        workspace: Path,
        runner_factory: RunnerFactory,
        repos: Repos,
        bodies: dict[StepId, StepBody] | None = None,
        worker_id: str = "",
        watch: WatchHooks | None = None,
        events: IncidentEvents | None = None,
    ) -> None:
        self.incidents = IncidentService(
            apps=apps,
            store=store,
            notifier=notifier,
            queue=queue,
            repos=repos,
            watch=watch,
            events=events,
        )
        self.steps = StepRunner(
            self.incidents,
            workspace=workspace,
            runner_factory=runner_factory,
            bodies=bodies,
            worker_id=worker_id,
        )
        # An incident's end closes the SSH connections its steps kept open in this process.
        self.incidents.ended = self.steps.close_runner
        self.apps, self.store, self.notifier, self.queue = apps, store, notifier, queue
        self.repos, self.watch, self.events = repos, watch, events
        self.workspace, self.runner_factory = workspace, runner_factory
        self.worker_id = self.steps.worker_id

    @property
    def draining(self) -> bool:
        return self.steps.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self.steps.draining = value

    @property
    def pause_point(self) -> Callable[[Incident, StepId], Awaitable[None]] | None:
        return self.steps.pause_point

    @pause_point.setter
    def pause_point(self, value: Callable[[Incident, StepId], Awaitable[None]] | None) -> None:
        self.steps.pause_point = value

    @property
    def bodies(self) -> dict[StepId, StepBody]:
        return self.steps.bodies

    # ---- the incident service -----------------------------------------------------------

    def app(self, name: str) -> AppConfig:
        return self.incidents.app(name)

    def check_request(self, req: OpenRequest) -> AppConfig:
        return self.incidents.check_request(req)

    async def check_version_exists(self, app: AppConfig, version: Version) -> None:
        await self.incidents.check_version_exists(app, version)

    async def open(self, req: OpenRequest) -> Incident:
        return await self.incidents.open(req)

    async def apply(self, incident_id: str, event: Event, *, who: str = "rewind") -> Incident:
        return await self.incidents.apply(incident_id, event, who=who)

    async def answer(self, incident_id: str, answer: Answer) -> Incident:
        return await self.incidents.answer(incident_id, answer)

    async def cancel(self, incident_id: str, actor: Actor) -> Incident:
        return await self.incidents.cancel(incident_id, actor)

    async def audit_refusal(self, incident_id: str, user: str, choice: str, why: str) -> None:
        await self.incidents.audit_refusal(incident_id, user, choice, why)

    async def reconcile(self) -> int:
        return await self.incidents.reconcile()

    # ---- the step runner ----------------------------------------------------------------

    async def run_step(
        self,
        incident_id: str,
        step: StepId,
        attempt: int,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        await self.steps.run_step(incident_id, step, attempt, heartbeat)

    async def close_runner(self, incident_id: str) -> None:
        await self.steps.close_runner(incident_id)

    async def aclose(self) -> None:
        await self.steps.aclose()
