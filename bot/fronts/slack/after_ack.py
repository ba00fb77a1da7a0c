"""The work that follows an ack (carrying a command out, a click), on the loop the acks share.

Each piece of work is a task of its own, started as soon as the ack is written; it takes its
turn, `at_once` at a time, once no request to `/slack/events` has been answered for `QUIET`
seconds (a burst comes in waves: the next requests arrive just after the last answers), or
`MOST` seconds after it was started at the latest, so a steady stream of requests never starves
it. A burst of requests is therefore acked first and answered after: no ack waits behind the
work of the ones before it, and a command recorded before its ack (`bot.store.pending`) keeps
its lease while it waits its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

log = logging.getLogger(__name__)

MOST = 1.0  # seconds the work waits for the acks being answered, at most
QUIET = 0.05  # seconds without a request being answered before the work goes on


class AfterAck:
    def __init__(self, at_once: int = 8, most: float = MOST, quiet: float = QUIET) -> None:
        self.answering = 0  # requests being answered now
        self.most = most
        self.quiet = quiet
        self._last = 0.0  # the loop's time when the last answer went out
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._slots = asyncio.Semaphore(at_once)
        self.tasks: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def answering_one(self) -> Iterator[None]:
        """Around the answer to one request: the work waits while any is under way."""
        self.answering += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self.answering -= 1
            self._last = asyncio.get_running_loop().time()
            if not self.answering:
                self._quiet.set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task of its own (it takes its turn with `turn`); kept for `drain`."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("work after an ack failed", exc_info=exc)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A free slot, then a quiet moment (or `most` seconds from now, whichever comes first).

        The slot comes first: the quiet is checked right before the work starts, not before a
        wait for a slot that a new burst may have filled with acks meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.most
        async with self._slots:
            while (left := deadline - loop.time()) > 0:
                if self.answering:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(left):
                            await self._quiet.wait()
                    continue
                calm = loop.time() - self._last
                if calm >= self.quiet:
                    break
                await asyncio.sleep(min(self.quiet - calm, left))
            yield

    async def drain(self, timeout: float) -> None:
        await asyncio.sleep(0)  # work spawned just now starts first
        if self.tasks:
            log.info("finishing %d request(s) in flight", len(self.tasks))
            await asyncio.wait(list(self.tasks), timeout=timeout)
