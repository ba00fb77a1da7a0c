"""The Redis store: incidents as JSON with compare-and-set, a fenced per-app lock, audit streams.

Its keys and scripts are in `bot.store.keys`. Writes that race (two workers, a click and a step
result) are settled by the incident's version: a stale write is refused and the caller re-reads.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.ports import AuditEntry, CompareAndSet, Freeze
from bot.store import keys as k
from bot.store.connection import ReplicaAck, ReportingRetry, connect
from bot.store.errors import translating
from bot.workflow.model import Incident
from bot.workflow.schema import load_incident

log = logging.getLogger(__name__)
RETENTION = 400 * 86400  # seconds a closed incident stays; its report stays in git for good
__all__ = ["RETENTION", "RedisStore", "ReportingRetry", "connect"]


@translating
class RedisStore(CompareAndSet):
    """`bot.ports.Store` on Redis."""

    def __init__(
        self, client: aioredis.Redis, *, retention: float = RETENTION, replicas: int = 0
    ) -> None:
        self.r = client
        self.retention = max(int(retention), 1)
        # With Sentinel, writes that matter wait for a replica: a failover must not undo them.
        self.replicated = ReplicaAck(replicas)
        self._save = client.register_script(k.SAVE_INCIDENT)
        self._audit = client.register_script(k.AUDIT)
        self._acquire = client.register_script(k.ACQUIRE_LOCK)
        self._release = client.register_script(k.RELEASE_LOCK)
        self._acquire_all = client.register_script(k.ACQUIRE_LOCKS)

    async def create(self, incident: Incident) -> None:
        if not await self.save(incident):
            raise RuntimeError(f"incident {incident.id} exists already")

    async def load(self, incident_id: str) -> Incident | None:
        raw = await self.r.get(k.incident(incident_id))
        return load_incident(raw) if raw else None

    async def save(self, incident: Incident) -> bool:
        expected = incident.version
        incident.version = expected + 1
        ok = await self._save(
            keys=[
                k.incident(incident.id),
                k.OPEN,
                k.RECENT,
                k.audit(incident.id),
                k.lock(incident.app),
            ],
            args=[
                incident.model_dump_json(),
                expected,
                "1" if incident.status.open else "0",
                incident.id,
                incident.created_at.timestamp(),
                self.retention,
                time.time() - self.retention,
            ],
        )
        if not ok:
            incident.version = expected
        else:
            await self.replicated(self.r)
        return bool(ok)

    async def acquire_lock(self, app: str, incident_id: str) -> int | str:
        token, holder = await self._acquire(keys=[k.lock(app), k.fence(app)], args=[incident_id])
        if int(token) == 0:
            return str(holder).rsplit(":", 1)[0]
        await self.replicated(self.r)
        return int(token)

    async def acquire_locks(self, holders: list[tuple[str, str]]) -> list[int] | tuple[str, str]:
        keys = [key for app, _ in holders for key in (k.lock(app), k.fence(app))]
        out = await self._acquire_all(keys=keys, args=[incident for _, incident in holders])
        if int(out[0]) == 0:
            return holders[int(out[1]) - 1][0], str(out[2]).rsplit(":", 1)[0]
        await self.replicated(self.r)
        return [int(token) for token in out[1:]]

    async def release_lock(self, app: str, incident_id: str) -> None:
        await self._release(keys=[k.lock(app)], args=[incident_id])

    async def holds_lock(self, app: str, incident_id: str, token: int) -> bool:
        return bool(await self.r.get(k.lock(app)) == f"{incident_id}:{token}")

    async def lock_holder(self, app: str) -> str | None:
        holder = await self.r.get(k.lock(app))
        return str(holder).rsplit(":", 1)[0] if holder else None

    async def _many(self, ids: list[str]) -> list[Incident]:
        if not ids:
            return []
        raws = await self.r.mget([k.incident(i) for i in ids])
        return [load_incident(raw) for raw in raws if raw]

    async def open_incidents(self) -> list[Incident]:
        ids = sorted(cast(set[str], await self.r.smembers(k.OPEN)))
        return sorted(await self._many(ids), key=lambda i: i.created_at)

    async def recent_incidents(self, limit: int = 20) -> list[Incident]:
        ids = cast(list[str], await self.r.zrevrange(k.RECENT, 0, limit - 1))
        return await self._many(ids)

    async def audit(self, incident_id: str, who: str, what: str, result: str = "") -> None:
        await self._audit(
            keys=[k.audit(incident_id), k.incident(incident_id)],
            args=[datetime.now(UTC).isoformat(), who, what, result],
        )

    async def timeline(self, incident_id: str) -> list[AuditEntry]:
        rows = cast(list[tuple[str, dict[str, str]]], await self.r.xrange(k.audit(incident_id)))
        return [dict(fields) for _, fields in rows]

    async def first_time(self, key: str, ttl: int = 3600) -> bool:
        return bool(await self.r.set(k.seen(key), "1", nx=True, ex=ttl))

    async def freeze(self, freeze: Freeze) -> None:
        await self.r.set(k.freeze(freeze.app), json.dumps(asdict(freeze)))

    async def unfreeze(self, app: str) -> Freeze | None:
        raw = await self.r.getdel(k.freeze(app))
        return Freeze(**json.loads(raw)) if raw else None

    async def frozen(self, app: str) -> Freeze | None:
        raw = await self.r.get(k.freeze(app))
        return Freeze(**json.loads(raw)) if raw else None

    async def expires_in(self, incident_id: str) -> float | None:
        """Seconds until a closed incident is forgotten; None while it is kept."""
        ttl = int(await self.r.pttl(k.incident(incident_id)))
        return ttl / 1000 if ttl > 0 else None

    async def save_plan(self, plan_id: str, data: str, ttl: int) -> None:
        await self.r.set(k.plan(plan_id), data, ex=ttl)

    async def load_plan(self, plan_id: str) -> str | None:
        raw = await self.r.get(k.plan(plan_id))
        return raw.decode() if isinstance(raw, bytes) else raw

    async def ping(self) -> bool:
        try:
            return bool(await self.r.ping())
        except (RedisConnectionError, RedisTimeoutError):
            return False
