"""Deploys, watches, baselines and quarantined versions in Redis (keys in `bot.store.keys`)."""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from bot.store import keys as k
from bot.store.errors import translating
from bot.watch.deploys import Deploy
from bot.watch.model import Watch, WatchState
from bot.workflow.baseline import Baseline
from bot.workflow.quarantine import Quarantine

HISTORY = 100  # deploys kept per app


@translating
class WatchStore:
    """`bot.watch.ports.WatchStore` on Redis."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.r = client
        self._save = client.register_script(k.SAVE_WATCH)

    # ---- deploys ---------------------------------------------------------------------------

    async def record_deploy(self, deploy: Deploy) -> None:
        key = k.deploys(deploy.app)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.lpush(key, deploy.model_dump_json())
            pipe.ltrim(key, 0, HISTORY - 1)
            await pipe.execute()

    async def deploys(self, app: str, limit: int = HISTORY) -> list[Deploy]:
        """Newest first."""
        raws = cast(list[str], await self.r.lrange(k.deploys(app), 0, limit - 1))
        return [Deploy.model_validate_json(raw) for raw in raws]

    # ---- watches ---------------------------------------------------------------------------

    async def save(self, watch: Watch) -> bool:
        """Write if nobody wrote since `watch.version` was read; bumps the version."""
        expected = watch.version
        watch.version = expected + 1
        ok = await self._save(
            keys=[k.watch(watch.id), k.WATCHES],
            args=[
                watch.model_dump_json(),
                expected,
                "1" if _active(watch) else "0",
                watch.id,
            ],
        )
        if not ok:
            watch.version = expected
        return bool(ok)

    async def load(self, watch_id: str) -> Watch | None:
        raw = await self.r.get(k.watch(watch_id))
        return Watch.model_validate_json(raw) if raw else None

    async def active(self) -> list[Watch]:
        ids = sorted(cast(set[str], await self.r.smembers(k.WATCHES)))
        if not ids:
            return []
        raws = await self.r.mget([k.watch(i) for i in ids])
        return [Watch.model_validate_json(raw) for raw in raws if raw]

    async def set_latest(self, app: str, watch_id: str) -> str | None:
        """Make `watch_id` the app's current watch; returns the one it replaces."""
        old = await self.r.getset(k.watch_latest(app), watch_id)
        return str(old) if old else None

    async def latest(self, app: str) -> Watch | None:
        watch_id = await self.r.get(k.watch_latest(app))
        return await self.load(str(watch_id)) if watch_id else None

    async def first_time(self, key: str, ttl: int = 86400) -> bool:
        return bool(await self.r.set(k.seen_watch(key), "1", nx=True, ex=ttl))

    # ---- versions a watch found bad (not good to go back to) ---------------------------------

    async def mark_bad(self, app: str, version: str, bad: bool = True) -> None:
        key = k.looked_bad(app)
        await (self.r.sadd(key, version) if bad else self.r.srem(key, version))

    async def looked_bad(self, app: str, version: str) -> bool:
        return bool(await self.r.sismember(k.looked_bad(app), version))

    # ---- baselines -------------------------------------------------------------------------

    async def set_baseline(self, app: str, baseline: Baseline) -> None:
        await self.r.set(k.baseline(app), baseline.model_dump_json())

    async def baseline(self, app: str) -> Baseline | None:
        raw = await self.r.get(k.baseline(app))
        return Baseline.model_validate_json(raw) if raw else None

    # ---- quarantine ------------------------------------------------------------------------

    async def quarantine(self, q: Quarantine) -> None:
        await self.r.hset(k.quarantine(q.app), q.version, q.model_dump_json())

    async def quarantined(self, app: str, version: str) -> Quarantine | None:
        raw = await self.r.hget(k.quarantine(app), version)
        return Quarantine.model_validate_json(raw) if raw else None

    async def quarantined_versions(self, app: str) -> list[Quarantine]:
        raws = cast(dict[str, str], await self.r.hgetall(k.quarantine(app)))
        return [Quarantine.model_validate_json(raw) for raw in raws.values()]

    async def release(self, app: str, version: str) -> Quarantine | None:
        key = k.quarantine(app)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hget(key, version)
            pipe.hdel(key, version)
            raw, _ = await pipe.execute()
        return Quarantine.model_validate_json(raw) if raw else None


def _active(watch: Watch) -> bool:
    """Ticking, or proposed but not yet posted: what a worker's reconcile looks after."""
    return watch.state.ticking or (watch.state is WatchState.PROPOSED and watch.message is None)
