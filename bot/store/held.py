"""Stakeholder notices that could not be posted (Slack unreachable), kept in Redis: a list, oldest
first, each taken atomically so that two processes never post one twice."""

from __future__ import annotations

import json
from dataclasses import asdict

import redis.asyncio as aioredis

from bot.ports import HeldNotice
from bot.store import keys
from bot.store.errors import translating


@translating
class RedisHeldNotices:
    """`bot.ports.HeldNotices` on Redis."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.r = client

    async def hold(self, notice: HeldNotice) -> None:
        await self.r.rpush(keys.HELD_NOTICES, json.dumps(asdict(notice)))

    async def held(self) -> list[HeldNotice]:
        raw = await self.r.lrange(keys.HELD_NOTICES, 0, -1)
        return [HeldNotice(**json.loads(item)) for item in raw]

    async def count(self) -> int:
        return int(await self.r.llen(keys.HELD_NOTICES))

    async def take(self) -> HeldNotice | None:
        raw = await self.r.lpop(keys.HELD_NOTICES)
        return HeldNotice(**json.loads(raw)) if isinstance(raw, str | bytes) else None

    async def put_back(self, notice: HeldNotice) -> None:
        await self.hold(notice)
