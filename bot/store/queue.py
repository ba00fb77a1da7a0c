"""The step queue on Redis, with saq: any number of workers share the steps.

A job is one attempt of one step. Its key (`incident:step:attempt`) makes enqueueing the same
attempt twice a no-op while it is queued or running. A worker beats its job's heartbeat while
the step runs; when a worker dies, another worker's sweep finds the job stuck and runs it again,
and `StepRunner.run_step` decides whether the step may be repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from saq import CronJob, Job, Queue, Worker
from saq.queue.redis import RedisQueue

from bot.store import keys
from bot.store.connection import Outage, OutageSaid, connect
from bot.store.errors import translating
from bot.telemetry.logs import INCIDENT
from bot.workflow.model import StepId

log = logging.getLogger(__name__)
RUN_STEP = "run_step"
DEQUEUE_WAIT = 1.0  # seconds a worker's slot blocks on the queue before asking again


@translating
class SaqStepQueue:
    """`bot.ports.StepQueue` on saq."""

    def __init__(self, queue: Queue, *, heartbeat: int = 15) -> None:
        self.queue = queue
        self.heartbeat = heartbeat

    async def enqueue_step(self, incident_id: str, step: StepId, attempt: int) -> None:
        await self._enqueue(
            incident_id, step, attempt, keys.step_job(incident_id, step.value, attempt)
        )

    async def hand_over(self, incident_id: str, step: StepId, attempt: int) -> None:
        """The same attempt for another worker, while this worker's job is still winding down."""
        key = f"{keys.step_job(incident_id, step.value, attempt)}:handover-{uuid.uuid4().hex[:8]}"
        await self._enqueue(incident_id, step, attempt, key)

    async def _enqueue(self, incident_id: str, step: StepId, attempt: int, key: str) -> None:
        await self.queue.enqueue(
            RUN_STEP,
            key=key,
            incident_id=incident_id,
            step=step.value,
            attempt=attempt,
            heartbeat=self.heartbeat,
            timeout=0,  # steps such as monitor run for many minutes; the heartbeat guards them
            retries=5,
            retry_delay=0.5,
        )


@translating
class SaqJobs:
    """Any other job on the same queue (the outgoing webhooks): enqueued once per key."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def enqueue(
        self, function: str, *, key: str, timeout: int, retries: int, **kwargs: str | int
    ) -> None:
        await self.queue.enqueue(function, key=key, timeout=timeout, retries=retries, **kwargs)


class RewindQueue(RedisQueue):
    """saq's Redis queue, whose sweep holds off while Redis is away and just after.

    While Redis was away no worker could beat its job's heartbeat: the first sweep after the
    outage would take every running step for dead. Workers get a full heartbeat to beat first.
    """

    def __init__(self, redis: Any, *, name: str, outage: Outage, heartbeat: float) -> None:
        super().__init__(redis, name=name)
        self.outage = outage
        self.heartbeat = heartbeat
        self.paused = False  # a worker that is stopping takes no new job

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        if self.paused:
            await asyncio.sleep(1)
            return None
        return await super().dequeue(timeout, poll_interval)

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        quiet = self.outage.since is not None or (
            self.outage.last_back and time.monotonic() - self.outage.last_back < 2 * self.heartbeat
        )
        if quiet:
            return []
        return await super().sweep(lock, abort)


def make_queue(
    redis_url: str, name: str, *, outage: Outage | None = None, heartbeat: float = 15
) -> RewindQueue:
    """saq on the same Redis (or Sentinel service) as the store; saq wants bytes, no timeout."""
    client = connect(redis_url, outage=outage, decode=False, command_timeout=None)
    saq_log = logging.getLogger("saq")
    if not any(isinstance(f, OutageSaid) for f in saq_log.filters):
        saq_log.addFilter(OutageSaid())
    return RewindQueue(client, name=name, outage=outage or Outage(), heartbeat=heartbeat)


@contextlib.asynccontextmanager
async def beating(job: Job, every: float) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Keep `job` alive while the step runs; also hands the step a manual beat."""

    async def beat() -> None:
        with contextlib.suppress(Exception):
            await job.update()

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            await beat()

    task = asyncio.create_task(loop())
    try:
        yield beat
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


STOP_GRACE = 2  # seconds saq's stop waits for its job slots (each waits 1 s at most when idle)


class RewindWorker(Worker[Any]):
    """saq's worker, whose clean stop is quiet.

    saq's stop waits its grace period (none by default) for every task of its own, then warns
    that "some tasks did not finish" and cancels them. Its upkeep loops (sweep, schedule, worker
    info) sleep up to 10 s between rounds, so every stop warned. They only poll: they are
    cancelled at once, once the stop event is set (they end quietly then); the job slots get a
    grace period of their own, unless Redis is away: then they are only reconnecting, and no
    job can be taken.
    """

    async def stop(self) -> None:
        self.event.set()
        away = isinstance(self.queue, RewindQueue) and self.queue.outage.since is not None
        upkeep = [t for t in self.tasks if away or t.get_name() != "process"]
        for task in upkeep:
            task.cancel()
        if upkeep:
            await asyncio.wait(upkeep, timeout=STOP_GRACE)
        self.tasks.difference_update(t for t in upkeep if t.done())
        await super().stop()


def make_worker(
    queue: Queue,
    run: Callable[[str, StepId, int, Callable[[], Awaitable[None]]], Awaitable[None]],
    *,
    heartbeat: int,
    sweep: int,
    concurrency: int,
    worker_id: str,
    startup: Callable[[], Awaitable[None]] | None = None,
    reconcile: Callable[[], Awaitable[int]] | None = None,
    functions: list[tuple[str, Callable[..., Awaitable[Any]]]] | None = None,
) -> RewindWorker:
    async def run_step(ctx: dict[str, Any], *, incident_id: str, step: str, attempt: int) -> None:
        job: Job = ctx["job"]
        async with beating(job, max(heartbeat / 3, 0.5)) as beat:
            await run(incident_id, StepId(step), attempt, beat)

    async def on_start(ctx: dict[str, Any]) -> None:
        if startup is not None:
            await startup()

    async def reconcile_running(ctx: Any) -> int:
        return await reconcile() if reconcile is not None else 0

    async def tag_logs(ctx: dict[str, Any]) -> None:
        # Runs in the task that processes the job: saq's own lines about it carry the id too.
        job: Job | None = ctx.get("job")
        incident = (job.kwargs or {}).get("incident_id") if job is not None else None
        INCIDENT.set(str(incident) if incident else None)

    # Once a minute, any worker re-enqueues the step of every running incident that has no
    # job (a process died between saving a transition and enqueueing its step).
    cron = [CronJob(reconcile_running, cron="* * * * *", timeout=60)] if reconcile else []
    return RewindWorker(
        queue,
        functions=[(RUN_STEP, run_step), *(functions or [])],
        cron_jobs=cron,
        concurrency=concurrency,
        id=worker_id,
        startup=on_start,
        before_process=tag_logs,
        timers={"sweep": sweep, "schedule": 1, "abort": 1, "worker_info": 10},
        # Redis hands a job to whichever BLMOVE has waited longest, even one from a worker that is
        # frozen or cut off and will never run it; bounded waits leave such a worker no claim on
        # a swept job for more than a second (each of its `concurrency` slots held one before).
        dequeue_timeout=DEQUEUE_WAIT,
        shutdown_grace_period_s=STOP_GRACE,
    )
