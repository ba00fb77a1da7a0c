"""The work that follows an ack (carrying a command out, a click), on the loop the acks share.

The ack puts its work in a queue (a reference to it, no task of its own) and `at_once` workers
carry it out in order. A worker starts the next piece once no request to `/slack/events` has
been answered for `QUIET` seconds (a burst comes in waves: the next requests arrive just after
the last answers), or `MOST` seconds after that piece was queued at the latest, so a steady
stream of requests never starves it. A burst of requests is therefore acked first and answered
after: no ack waits behind the work of the ones before it, and the work that waits makes as
little for the loop (and its garbage collector) to look after as it can.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

MOST = 1.0  # seconds a piece of work waits for the acks being answered, at most
QUIET = 0.05  # seconds without a request being answered before the work goes on

Work = Callable[[], Awaitable[None]]


class AfterAck:
    def __init__(self, at_once: int = 8, most: float = MOST, quiet: float = QUIET) -> None:
        self.busy = 0  # requests being answered now
        self.at_once = at_once
        self.most = most
        self.quiet = quiet
        self._last = 0.0  # the loop's time when the last answer went out
        self._queue: deque[tuple[float, Work]] = deque()  # (queued at, the work)
        self.workers: set[asyncio.Task[None]] = set()
        self._running = 0  # pieces of work under way (a worker may be waiting for its turn)

    def answering(self) -> None:
        """An answer to a request is under way: the work waits meanwhile (see `answered`)."""
        self.busy += 1

    def answered(self) -> None:
        self.busy -= 1
        self._last = asyncio.get_running_loop().time()

    def later(self, work: Work) -> None:
        """Carry out `work` after the acks under way, in order."""
        loop = asyncio.get_running_loop()
        self._queue.append((loop.time(), work))
        # A worker of its own while there are fewer than `at_once`: one busy with a long piece
        # of work (a cancel that waits for its step) never holds up the next.
        if len(self.workers) < self.at_once:
            task = loop.create_task(self._work())
            self.workers.add(task)
            task.add_done_callback(self.workers.discard)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def _work(self) -> None:
        while self._queue:
            await self._calm(self._queue[0][0] + self.most)
            if not self._queue:
                return
            _, work = self._queue.popleft()
            self._running += 1
            try:
                await work()
            except Exception:
                log.exception("work after an ack failed")
            finally:
                self._running -= 1

    async def _calm(self, deadline: float) -> None:
        """Until no answer has gone out for `quiet` seconds, or `deadline`. Checked every so
        often, not woken by each answer: a burst of acks wakes none of the waiting workers."""
        loop = asyncio.get_running_loop()
        while (left := deadline - loop.time()) > 0:
            calm = loop.time() - self._last
            if not self.busy and calm >= self.quiet:
                return
            await asyncio.sleep(min(self.quiet - calm if not self.busy else self.quiet, left))

    async def drain(self, timeout: float) -> None:
        """The work queued and under way, finished (up to `timeout` seconds)."""
        if self.workers:
            log.info("finishing %d request(s) in flight", len(self._queue) + self._running)
            await asyncio.wait(list(self.workers), timeout=timeout)
