"""The incident service and the step runner with an in-memory store: exactly-once steps, stale
jobs, reconciliation, an ended incident's connections closed."""

from __future__ import annotations

from pathlib import Path

from bot.config.apps_file import AppConfig, parse_apps
from bot.incidents.host_runners import HostRunners
from bot.incidents.service import IncidentService, OpenRequest
from bot.incidents.step_runner import StepRunner
from bot.ports import HostRunner
from bot.steps.context import Outcome, StepBody, StepContext
from bot.store.memory import MemoryStore
from bot.workflow.model import Status, StepId, StepStatus
from bot.workflow.policy import Actor
from runners.git import GitRepos
from runners.local import LocalRunner
from tests.fakes import RecordingNotifier


class RecordingQueue:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, StepId, int]] = []

    async def enqueue_step(self, incident_id: str, step: StepId, attempt: int) -> None:
        self.jobs.append((incident_id, step, attempt))

    async def hand_over(self, incident_id: str, step: StepId, attempt: int) -> None:
        self.jobs.append((incident_id, step, attempt))


def engine(
    tmp_path: Path, calls: list[StepId], runners: HostRunners | None = None
) -> tuple[StepRunner, RecordingQueue, MemoryStore]:
    apps = parse_apps(
        {"apps": {"myapp": {
            "repo": str(tmp_path), "incident_channel": "C1", "operators": ["U0CAROL"],
            "environment": "staging", "ssh": {"transport": "local"},
            "hosts": [{"name": "w1", "address": "127.0.0.1"}],
            "deploy": {"strategy": "commands", "workdir": str(tmp_path), "commands": {
                "fetch": "true", "install": "true", "restart": "true", "status": "true",
                "version": "true"}}}}},
        "test",
    )  # fmt: skip

    def body(step: StepId) -> StepBody:
        async def run(ctx: StepContext) -> Outcome:
            calls.append(step)
            return Outcome(summary=f"{step} done")

        return run

    queue, store = RecordingQueue(), MemoryStore()
    runners = runners or HostRunners(LocalRunner)
    incidents = IncidentService(
        apps=apps, store=store, notifier=RecordingNotifier(), queue=queue,
        repos=GitRepos(tmp_path), ended=runners.close,
    )  # fmt: skip
    eng = StepRunner(
        incidents, runners=runners, workspace=tmp_path, bodies={s: body(s) for s in StepId}
    )
    return eng, queue, store


async def open_incident(eng: StepRunner) -> str:
    req = OpenRequest("myapp", None, "checkout 500", Actor("U0CAROL"))
    return (await eng.incidents.open(req)).id


async def test_a_step_that_succeeded_never_runs_again(tmp_path: Path) -> None:
    calls: list[StepId] = []
    eng, queue, store = engine(tmp_path, calls)
    incident_id = await open_incident(eng)
    assert queue.jobs == [(incident_id, StepId.PREREQUISITES, 1)]
    await eng.run_step(incident_id, StepId.PREREQUISITES, 1)
    await eng.run_step(incident_id, StepId.PREREQUISITES, 1)  # a duplicate job
    await eng.run_step(incident_id, StepId.PREREQUISITES, 2)  # a job from nowhere
    assert calls == [StepId.PREREQUISITES]
    incident = await store.load(incident_id)
    assert incident is not None
    assert incident.step(StepId.PREREQUISITES).status is StepStatus.SUCCEEDED
    assert queue.jobs[-1] == (incident_id, StepId.ASSESS, 1)


async def test_reconcile_enqueues_running_incidents_only(tmp_path: Path) -> None:
    calls: list[StepId] = []
    eng, queue, store = engine(tmp_path, calls)
    incident_id = await open_incident(eng)
    queue.jobs.clear()  # as if the process died before the job reached the queue
    assert await eng.incidents.reconcile() == 1
    assert queue.jobs == [(incident_id, StepId.PREREQUISITES, 1)]
    await eng.run_step(incident_id, StepId.PREREQUISITES, 1)
    await eng.run_step(incident_id, StepId.ASSESS, 1)
    incident = await store.load(incident_id)
    assert incident is not None and incident.status is Status.WAITING  # the decision
    queue.jobs.clear()
    assert await eng.incidents.reconcile() == 0 and queue.jobs == []


async def test_a_lost_lock_stops_the_step_before_its_side_effects(tmp_path: Path) -> None:
    calls: list[StepId] = []
    eng, _, store = engine(tmp_path, calls)
    incident_id = await open_incident(eng)
    await store.release_lock("myapp", incident_id)
    await store.acquire_lock("myapp", "someone-else")
    await eng.run_step(incident_id, StepId.PREREQUISITES, 1)
    assert calls == []
    incident = await store.load(incident_id)
    assert incident is not None and incident.status is Status.PAUSED
    rec = incident.step(StepId.PREREQUISITES)
    assert rec.error is not None and "no longer holds the lock" in rec.error.what


async def test_a_lock_taken_a_moment_ago_by_an_incident_being_opened_is_respected(
    tmp_path: Path,
) -> None:
    """The lock is taken before the incident is stored: a second /rollback in between must
    not take it over as if it were left by a crash."""
    import asyncio

    from bot.workflow.errors import UserFacingError
    from bot.workflow.machine import new_steps
    from bot.workflow.model import Incident

    eng, _, store = engine(tmp_path, [])
    token = await store.acquire_lock("myapp", "opening")
    assert isinstance(token, int)

    async def stored_soon() -> None:
        await asyncio.sleep(0.3)
        await store.create(
            Incident(id="opening", app="myapp", environment="staging", requested_version=None,
                     requested_by="U0ALICE", steps=new_steps(), lock_token=token)
        )  # fmt: skip

    creating = asyncio.create_task(stored_soon())
    try:
        await open_incident(eng)
        raise AssertionError("a second incident was opened")
    except UserFacingError as exc:
        assert "already has an open incident `opening`" in str(exc)
    await creating
    # A lock whose incident never appears (its opener crashed) is taken over.
    await store.release_lock("myapp", "opening")
    assert isinstance(await store.acquire_lock("myapp", "crashed"), int)
    assert await open_incident(eng)


async def test_an_ended_incident_closes_the_connections_its_steps_kept(tmp_path: Path) -> None:
    """The incident service is built told where an incident's end goes: the runner its steps
    reused is closed when it ends, not left open until the worker stops."""
    made: list[ClosingRunner] = []

    def factory(app: AppConfig) -> HostRunner:
        made.append(ClosingRunner(app))
        return made[-1]

    eng, _, store = engine(tmp_path, [], HostRunners(factory))
    incident_id = await open_incident(eng)
    await eng.run_step(incident_id, StepId.PREREQUISITES, 1)
    assert len(made) == 1 and not made[0].closed  # kept for the incident's next step
    await eng.incidents.cancel(incident_id, Actor("U0CAROL"))
    incident = await store.load(incident_id)
    assert incident is not None and incident.status is Status.CANCELLED
    assert made[0].closed


class ClosingRunner(LocalRunner):
    closed = False

    async def close(self) -> None:
        self.closed = True
        await super().close()
