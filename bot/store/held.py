"""Stakeholder notices that could not be posted (Slack unreachable), kept in Redis."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from bot.store import keys as k

KEY = k.HELD_NOTICES


@dataclass(frozen=True)
class HeldNotice:
    incident: str
    channel: str
    text: str
    at: str  # ISO time it was written


async def hold(r: Redis, notice: HeldNotice) -> None:
    await r.rpush(KEY, json.dumps(asdict(notice)))


async def pending(r: Redis) -> list[HeldNotice]:
    raw = await r.lrange(KEY, 0, -1)
    return [HeldNotice(**json.loads(item)) for item in raw]
