"""Pacing: at most one new message per channel every `min_interval` seconds (Slack allows about
one a second per channel and answers 429 beyond it).

A slot is not reserved ahead of time: whoever waits for one is in line, and the next free slot
goes to the first in line — a question (`urgent`) before anything else, then in call order.
So a question asked while a thread's output waits for its turn takes the very next slot,
without ever making two messages closer than `min_interval`.

The interval also counts from Slack's answer to the previous message (`sent`): Slack counts
from when it received a message, which is before its answer; counting from the slot alone let
a faster second request arrive less than `min_interval` after the first — a 429, and the
Retry-After second lost, often by the question that was meant to go at once."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field


@dataclass
class _Channel:
    next_free: float = 0.0  # monotonic time the next message may go
    line: list[tuple[int, int]] = field(default_factory=list)  # (0 urgent / 1 not, call order)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """Those waiting for their turn look again (the head of the line changed)."""
        self.changed.set()
        self.changed = asyncio.Event()


class ChannelPacer:
    """Hands out each channel's message slots, `min_interval` apart, questions first."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self._channels: dict[str, _Channel] = {}
        self._order = itertools.count()

    def sent(self, channel: str) -> None:
        """Slack has answered a message posted into `channel`: the next one waits from now."""
        ch = self._channels.setdefault(channel, _Channel())
        ch.next_free = max(ch.next_free, time.monotonic() + self.min_interval)

    async def slot(self, channel: str, *, urgent: bool = False) -> None:
        """Wait for this channel's next message slot: questions first, then in call order."""
        ch = self._channels.setdefault(channel, _Channel())
        ticket = (0 if urgent else 1, next(self._order))
        heapq.heappush(ch.line, ticket)
        try:
            while True:
                wait = ch.next_free - time.monotonic()
                if ch.line[0] != ticket:
                    await ch.changed.wait()  # someone ahead: wait until they have their slot
                elif wait > 0:
                    await asyncio.sleep(wait)  # first in line: the slot is mine once it is free
                else:
                    heapq.heappop(ch.line)
                    ch.next_free = time.monotonic() + self.min_interval
                    return
        finally:
            if ticket in ch.line:  # cancelled while waiting: out of the line
                ch.line.remove(ticket)
                heapq.heapify(ch.line)
            ch.wake()
