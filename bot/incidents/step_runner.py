"""The step runner: runs a step's body on a worker and applies its result through the incident
service.

Workers call `run_step`. Before every side effect the step is fenced (the incident still holds the
app, this run the step); a worker that is stopping hands a repeatable step over to another.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.incidents.host_runners import HostRunners
from bot.incidents.service import IncidentService
from bot.ports import AuditEntry
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


class HandOver(RewindError):
    """This worker is stopping (SIGTERM): a repeatable step stops before its next command."""


class StepRunner:
    def __init__(
        self,
        incidents: IncidentService,
        *,
        runners: HostRunners,
        workspace: Path,
        bodies: dict[StepId, StepBody] | None = None,
        worker_id: str = "",
        pause_point: Callable[[Incident, StepId], Awaitable[None]] | None = None,
    ) -> None:
        self.incidents = incidents
        self.apps = incidents.apps
        self.store = incidents.store
        self.notifier = incidents.notifier
        self.queue = incidents.queue
        self.workspace = workspace
        # The same pool the incident service closes an incident's connections in when it ends.
        self.runners = runners
        self._bodies = bodies
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:6]}"
        # Set when this worker is told to stop: repeatable steps go to another worker at their
        # next command; a step that is not safe to repeat runs to its end first.
        self.draining = False
        # The terminal front's Ctrl-C: asked at a fence, after the running command, never within.
        self.pause_point = pause_point

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
        runner = await self.runners.take(incident.id, app)
        ctx = StepContext(
            incident=incident,
            step=step,
            app=app,
            apps=self.apps,
            hosts=runner,
            notifier=self.notifier,
            repos=self.incidents.repos,
            people=self.incidents.people,
            workspace=self.workspace,
            fence=lambda: self._fence(incident, step, run_id),
            timeline=lambda: self.store.timeline(incident.id),
        )
        if heartbeat is not None:
            ctx.heartbeat = heartbeat
        if incident.group is not None:
            ctx.members = lambda: self._members(incident)
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
            await self.runners.give_back(incident.id, runner)

    async def _members(self, incident: Incident) -> list[tuple[Incident, list[AuditEntry]]]:
        """A group's members, in its order, each with its timeline (the group's one report)."""
        assert incident.group is not None
        out: list[tuple[Incident, list[AuditEntry]]] = []
        for member_id in incident.group.members:
            member = await self.store.load(member_id)
            if member is not None:
                out.append((member, await self.store.timeline(member_id)))
        return out

    async def aclose(self) -> None:
        await self.runners.aclose()

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
