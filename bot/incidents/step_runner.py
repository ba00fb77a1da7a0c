"""The step runner: runs a step's body on a worker and applies its result through the incident
service.

Workers call `run_step`. Before every side effect the step is fenced (the incident still holds the
app, this run the step); a worker that is stopping hands a repeatable step over to another.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.config.apps_file import AppConfig
from bot.incidents.service import IncidentService
from bot.ports import HostRunner
from bot.steps.context import Outcome, StepBody, StepContext
from bot.telemetry.logs import INCIDENT
from bot.telemetry.metrics import STEP_SECONDS, STEPS
from bot.workflow.errors import RewindError, StepError, UserFacingError
from bot.workflow.facts import StepFacts
from bot.workflow.machine import StepFailed, StepInterrupted, StepStarted, StepSucceeded
from bot.workflow.messages import Mark, message, words
from bot.workflow.messages import Status as MarkStatus
from bot.workflow.model import ErrorInfo, HostResult, Incident, StepId, StepStatus
from bot.workflow.render_text import plain
from bot.workflow.steps import SPECS

log = logging.getLogger(__name__)
RunnerFactory = Callable[[AppConfig], HostRunner]
RUNNER_IDLE = 600.0  # seconds an incident's SSH connections may stay open unused
# Seconds between looks at the kept runners: an incident may end in another process (an Abort
# taken by the web process), and only the store tells this worker so.
RUNNER_REAP = 5.0


class HandOver(RewindError):
    """This worker is stopping (SIGTERM): a repeatable step stops before its next command."""


class StepRunner:
    def __init__(
        self,
        incidents: IncidentService,
        *,
        workspace: Path,
        runner_factory: RunnerFactory,
        bodies: dict[StepId, StepBody] | None = None,
        worker_id: str = "",
    ) -> None:
        self.incidents = incidents
        self.apps = incidents.apps
        self.store = incidents.store
        self.notifier = incidents.notifier
        self.queue = incidents.queue
        self.workspace = workspace
        self.runner_factory = runner_factory
        # One runner (so one SSH connection per host) per incident in this process, reused by
        # its steps; closed when the incident ends (here or elsewhere) or has been idle a while.
        # A runner in use by a step is out of this dict, so nothing closes it under the step.
        self._runners: dict[str, tuple[HostRunner, float]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._bodies = bodies
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:6]}"
        # Set when this worker is told to stop: repeatable steps go to another worker at their
        # next command; a step that is not safe to repeat runs to its end first.
        self.draining = False
        # The terminal front's Ctrl-C: asked at a fence, after the running command, never within.
        self.pause_point: Callable[[Incident, StepId], Awaitable[None]] | None = None

    @property
    def bodies(self) -> dict[StepId, StepBody]:
        if self._bodies is None:
            from bot.steps.registry import bodies

            self._bodies = bodies()
        return self._bodies

    async def run_step(
        self,
        incident_id: str,
        step: StepId,
        attempt: int,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        INCIDENT.set(incident_id)  # on every log line of this step's work
        if self.draining:
            await self.queue.hand_over(incident_id, step, attempt)
            return
        incident = await self.store.load(incident_id)
        if incident is None or not incident.status.open:
            return
        rec = incident.step(step)
        if rec.status is StepStatus.RUNNING:
            if rec.attempts != attempt:
                return  # an older job's duplicate; the current attempt owns the step
            if not SPECS[step].repeatable:
                await self.notifier.say(
                    incident,
                    words(
                        f"♻️ Worker `{self.worker_id}` took over incident `{incident.id}` "
                        f"after `{rec.worker}` stopped during “{SPECS[step].title}”."
                    ),
                )
                await self.incidents.apply(incident_id, StepInterrupted(step, rec.worker or "?"))
                return
            await self.notifier.say(
                incident,
                words(
                    f"♻️ Worker `{self.worker_id}` resumed incident `{incident.id}` after "
                    f"`{rec.worker}` stopped; “{SPECS[step].title}” is safe to repeat, "
                    "running it again."
                ),
            )
        elif rec.status is not StepStatus.PENDING or rec.attempts >= attempt:
            return  # already done, waiting for a person, or a stale job
        run_id = uuid.uuid4().hex
        resumes = rec.run_id if rec.status is StepStatus.RUNNING else None
        try:
            incident = await self.incidents.apply(
                incident_id,
                StepStarted(step, run_id, self.worker_id, resumes=resumes),
                who=self.worker_id,
            )
        except UserFacingError:
            return
        started = time.monotonic()
        log.info("step %s (attempt %d) started on %s", step.value, attempt, self.worker_id)
        event = await self._execute(incident, step, run_id, heartbeat)
        if event is None:
            await self._hand_over(incident, step, attempt)
            return
        took = time.monotonic() - started
        STEP_SECONDS.labels(step=step.value).observe(took)
        result = "succeeded" if isinstance(event, StepSucceeded) else "failed"
        STEPS.labels(step=step.value, result=result).inc()
        log.info("step %s %s in %.1f s", step.value, result, took)
        try:
            await self.incidents.apply(incident_id, event, who=self.worker_id)
        except UserFacingError as exc:
            log.info("step result for %s/%s dropped: %s", incident_id, step, exc)
            await self._late_result(incident_id, event)

    async def _hand_over(self, incident: Incident, step: StepId, attempt: int) -> None:
        """Stopping: the step ends before its next command and another worker takes it on."""
        await self.notifier.say(
            incident,
            words(
                f"🔄 Worker `{self.worker_id}` is stopping (a restart of "
                f"Rewind); “{SPECS[step].title}” stopped before its next command and goes to "
                "another worker (it is safe to repeat)."
            ),
        )
        await self.store.audit(incident.id, self.worker_id, f"handed over: {SPECS[step].title}")
        await self.queue.hand_over(incident.id, step, attempt)

    async def _late_result(self, incident_id: str, event: StepSucceeded | StepFailed) -> None:
        """A step finished after its incident ended (cancelled mid-step): say what it did."""
        current = await self.store.load(incident_id)
        if current is None or current.status.open:
            return
        title = SPECS[event.step].title
        what = (
            f"finished after all: {event.summary}"
            if isinstance(event, StepSucceeded)
            else f"failed after all: {event.error.plain()}"
        )
        await self.notifier.say(
            current,
            message(
                Mark(MarkStatus.WARN), f" “{title}”, still running when the incident ended, {what}"
            ),
        )

    async def _execute(
        self,
        incident: Incident,
        step: StepId,
        run_id: str,
        heartbeat: Callable[[], Awaitable[None]] | None,
    ) -> StepSucceeded | StepFailed | None:
        """The step's result, or None when it was handed over to another worker."""
        app = self.incidents.app(incident.app)
        runner = await self._runner(incident)
        ctx = StepContext(
            incident=incident,
            step=step,
            app=app,
            apps=self.apps,
            hosts=runner,
            notifier=self.notifier,
            workspace=self.workspace,
            fence=lambda: self._fence(incident, step, run_id),
            timeline=lambda: self.store.timeline(incident.id),
        )
        if heartbeat is not None:
            ctx.heartbeat = heartbeat
        try:
            await self._fence(incident, step, run_id)
            outcome: Outcome = await self.bodies[step](ctx)
            return StepSucceeded(
                step,
                run_id,
                outcome.summary,
                hosts=outcome.hosts,
                facts=outcome.facts,
                criteria=outcome.criteria,
                skip=outcome.skip,
            )
        except HandOver:
            return None
        except StepError as exc:
            return StepFailed(
                step,
                run_id,
                exc.info(),
                hosts=_hosts(exc),
                facts=_facts(ctx),
                criteria=exc.criteria,
            )
        except UserFacingError as exc:
            error = ErrorInfo(what=plain(exc.message), hint="Fix it, then Retry — or Abort.")
            return StepFailed(step, run_id, error, facts=_facts(ctx))
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception(
                "step %s of incident %s failed [error id %s]", step, incident.id, error_id
            )
            error = ErrorInfo(
                what=f"“{SPECS[step].title}” hit an unexpected error (error id {error_id})",
                hint="The bot's log has the details under that id. Retry, or Abort.",
            )
            return StepFailed(step, run_id, error, facts=_facts(ctx))
        finally:
            # No flush here: the thread's messages go out in order in the background, so the
            # next step never waits for Slack's pacing.
            await self._keep(incident.id, runner)

    async def _runner(self, incident: Incident) -> HostRunner:
        cached = self._runners.pop(incident.id, None)
        if cached is not None:
            return cached[0]
        return self.runner_factory(self.incidents.app(incident.app))

    async def _keep(self, incident_id: str, runner: HostRunner) -> None:
        """Kept for the incident's next step, which then needs no new connection."""
        kept = self._runners.pop(incident_id, None)
        if kept is not None and kept[0] is not runner:
            await kept[0].close()  # two runs of one incident at once here: one runner is enough
        self._runners[incident_id] = (runner, time.monotonic())
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        """While runners are kept: close those whose incident has ended, wherever it ended, and
        those idle for `RUNNER_IDLE` (their next step, if any, connects again)."""
        while self._runners:
            await asyncio.sleep(RUNNER_REAP)
            for incident_id, kept in list(self._runners.items()):
                try:
                    done = await self._done_with(incident_id, kept[1])
                    if done and self._runners.get(incident_id) is kept:  # no step took it since
                        await self.close_runner(incident_id)
                except Exception:  # the store away: kept, looked at again next round
                    log.debug("runner of %s kept: its incident cannot be read", incident_id)

    async def _done_with(self, incident_id: str, since: float) -> bool:
        if time.monotonic() - since > RUNNER_IDLE:
            return True
        incident = await self.store.load(incident_id)
        return incident is None or not incident.status.open

    async def close_runner(self, incident_id: str) -> None:
        cached = self._runners.pop(incident_id, None)
        if cached is not None:
            await cached[0].close()

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for incident_id in list(self._runners):
            await self.close_runner(incident_id)

    async def _fence(self, incident: Incident, step: StepId, run_id: str) -> None:
        """Before every side effect: this incident still holds the app, this run the step.

        Read from Redis each time, never cached: after a Redis restart or a failover the lock
        or the step may have moved, and a step that lost either stops before doing anything.
        """
        if self.draining and SPECS[step].repeatable:
            raise HandOver(f"worker {self.worker_id} is stopping")
        if self.pause_point is not None:
            await self.pause_point(incident, step)
        if not await self.store.holds_lock(incident.app, incident.id, incident.lock_token):
            raise StepError(
                f"incident {incident.id} no longer holds the lock on {incident.app}",
                hint="It was cancelled or finished elsewhere; nothing more is done.",
            )
        current = await self.store.load(incident.id)
        rec = current.step(step) if current is not None else None
        if rec is None or rec.run_id != run_id or rec.status is not StepStatus.RUNNING:
            raise StepError(
                f"another run took over “{SPECS[step].title}”",
                hint="This run stops here so that the step never runs twice at once.",
            )


def _hosts(exc: StepError) -> dict[str, HostResult]:
    return dict(exc.hosts)


def _facts(ctx: StepContext) -> StepFacts | None:
    """Facts a failing step recorded on its way (e.g. which hosts are already redeployed)."""
    return ctx.incident.facts.of_step(ctx.step.value)
