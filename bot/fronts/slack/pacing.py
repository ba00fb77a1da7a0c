"""Pacing: at most one new message per channel every `min_interval` seconds (Slack allows about
one a second per channel and answers 429 beyond it)."""

from __future__ import annotations

import asyncio
import time


class ChannelPacer:
    """Hands out each channel's message slots, `min_interval` apart."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self._next: dict[str, float] = {}

    async def slot(self, channel: str) -> None:
        """Wait for this channel's next message slot (reserved in call order)."""
        now = time.monotonic()
        at = max(now, self._next.get(channel, 0.0))
        self._next[channel] = at + self.min_interval
        if at > now:
            await asyncio.sleep(at - now)
