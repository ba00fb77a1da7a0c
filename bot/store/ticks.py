"""The watch's ticks as saq jobs: one job per tick, keyed so a tick is never queued twice."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from saq import Job, Queue

from bot.store import keys
from bot.store.errors import translating
from bot.store.queue import beating

WATCH_TICK = "watch_tick"
# saq moves scheduled jobs to the queue once a second: a tick is scheduled a little early and
# waits for its due time itself, holding a worker's slot for about a second.
EARLY = 1.5


@translating
class SaqTickQueue:
    """`bot.watch.service.TickQueue` on saq."""

    def __init__(self, queue: Queue, *, heartbeat: int = 15) -> None:
        self.queue = queue
        self.heartbeat = heartbeat

    async def enqueue_tick(self, watch_id: str, n: int, due: float) -> None:
        scheduled = due - EARLY
        await self.queue.enqueue(
            WATCH_TICK,
            key=keys.tick_job(watch_id, n),
            watch_id=watch_id,
            n=n,
            scheduled=int(scheduled) if scheduled > time.time() else 0,
            heartbeat=self.heartbeat,
            timeout=300,
            retries=3,
            retry_delay=0.5,
        )


def tick_function(
    tick: Callable[[str, int], Awaitable[None]], heartbeat: int
) -> tuple[str, Callable[..., Awaitable[None]]]:
    async def watch_tick(ctx: dict[str, Any], *, watch_id: str, n: int) -> None:
        job: Job = ctx["job"]
        async with beating(job, max(heartbeat / 3, 0.5)):
            await tick(watch_id, n)

    return WATCH_TICK, watch_tick
