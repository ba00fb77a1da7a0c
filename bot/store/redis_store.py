"""The Redis store: incidents as JSON with compare-and-set, a fenced per-app lock, audit streams.

Every key lives under `rewind:`. Writes that race (two workers, a click and a step result) are
settled by the incident's version: a stale write is refused and the caller re-reads.
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
from bot.store.connection import ReplicaAck, ReportingRetry, connect
from bot.workflow.model import Incident
from bot.workflow.schema import load_incident

log = logging.getLogger(__name__)
P = "rewind:"
RETENTION = 400 * 86400  # seconds a closed incident stays; its report stays in git for good
__all__ = ["RETENTION", "RedisStore", "ReportingRetry", "connect"]

_SAVE = """
local cur = redis.call('GET', KEYS[1])
local expected = tonumber(ARGV[2])
if cur then
  if cjson.decode(cur)['version'] ~= expected then return 0 end
elseif expected ~= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('PERSIST', KEYS[4])
else
  -- Closed: the incident and its audit trail go after the retention (the report is in git).
  redis.call('SREM', KEYS[2], ARGV[4])
  -- Its app's lock goes in the same write, so that nobody sees it ended yet holding the app
  -- (the engine's own release comes after a WAIT, Slack, events) and a failover keeps both.
  local holder = redis.call('GET', KEYS[5])
  if holder and string.match(holder, '^(.*):') == ARGV[4] then redis.call('DEL', KEYS[5]) end
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('EXPIRE', KEYS[4], ARGV[6])
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[7])
return 1
"""

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder then return {0, holder} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token)
return {token, ARGV[1]}
"""

_AUDIT = """
redis.call('XADD', KEYS[1], '*', 'at', ARGV[1], 'who', ARGV[2], 'what', ARGV[3], 'result', ARGV[4])
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

_RELEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and string.match(holder, '^(.*):') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisStore(CompareAndSet):
    """`bot.ports.Store` on Redis."""

    def __init__(
        self, client: aioredis.Redis, *, retention: float = RETENTION, replicas: int = 0
    ) -> None:
        self.r = client
        self.retention = max(int(retention), 1)
        # With Sentinel, writes that matter wait for a replica: a failover must not undo them.
        self.replicated = ReplicaAck(replicas)
        self._save = client.register_script(_SAVE)
        self._audit = client.register_script(_AUDIT)
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    async def create(self, incident: Incident) -> None:
        if not await self.save(incident):
            raise RuntimeError(f"incident {incident.id} exists already")

    async def load(self, incident_id: str) -> Incident | None:
        raw = await self.r.get(f"{P}incident:{incident_id}")
        return load_incident(raw) if raw else None

    async def save(self, incident: Incident) -> bool:
        expected = incident.version
        incident.version = expected + 1
        ok = await self._save(
            keys=[
                f"{P}incident:{incident.id}",
                f"{P}open",
                f"{P}recent",
                f"{P}audit:{incident.id}",
                f"{P}lock:{incident.app}",
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
        token, holder = await self._acquire(
            keys=[f"{P}lock:{app}", f"{P}fence:{app}"], args=[incident_id]
        )
        if int(token) == 0:
            return str(holder).rsplit(":", 1)[0]
        await self.replicated(self.r)
        return int(token)

    async def release_lock(self, app: str, incident_id: str) -> None:
        await self._release(keys=[f"{P}lock:{app}"], args=[incident_id])

    async def holds_lock(self, app: str, incident_id: str, token: int) -> bool:
        return bool(await self.r.get(f"{P}lock:{app}") == f"{incident_id}:{token}")

    async def lock_holder(self, app: str) -> str | None:
        holder = await self.r.get(f"{P}lock:{app}")
        return str(holder).rsplit(":", 1)[0] if holder else None

    async def _many(self, ids: list[str]) -> list[Incident]:
        if not ids:
            return []
        raws = await self.r.mget([f"{P}incident:{i}" for i in ids])
        return [load_incident(raw) for raw in raws if raw]

    async def open_incidents(self) -> list[Incident]:
        ids = sorted(cast(set[str], await self.r.smembers(f"{P}open")))
        return sorted(await self._many(ids), key=lambda i: i.created_at)

    async def recent_incidents(self, limit: int = 20) -> list[Incident]:
        ids = cast(list[str], await self.r.zrevrange(f"{P}recent", 0, limit - 1))
        return await self._many(ids)

    async def audit(self, incident_id: str, who: str, what: str, result: str = "") -> None:
        await self._audit(
            keys=[f"{P}audit:{incident_id}", f"{P}incident:{incident_id}"],
            args=[datetime.now(UTC).isoformat(), who, what, result],
        )

    async def timeline(self, incident_id: str) -> list[AuditEntry]:
        rows = cast(
            list[tuple[str, dict[str, str]]], await self.r.xrange(f"{P}audit:{incident_id}")
        )
        return [dict(fields) for _, fields in rows]

    async def first_time(self, key: str, ttl: int = 3600) -> bool:
        return bool(await self.r.set(f"{P}seen:{key}", "1", nx=True, ex=ttl))

    async def freeze(self, freeze: Freeze) -> None:
        await self.r.set(f"{P}freeze:{freeze.app}", json.dumps(asdict(freeze)))

    async def unfreeze(self, app: str) -> Freeze | None:
        raw = await self.r.getdel(f"{P}freeze:{app}")
        return Freeze(**json.loads(raw)) if raw else None

    async def frozen(self, app: str) -> Freeze | None:
        raw = await self.r.get(f"{P}freeze:{app}")
        return Freeze(**json.loads(raw)) if raw else None

    async def expires_in(self, incident_id: str) -> float | None:
        """Seconds until a closed incident is forgotten; None while it is kept."""
        ttl = int(await self.r.pttl(f"{P}incident:{incident_id}"))
        return ttl / 1000 if ttl > 0 else None

    async def save_plan(self, plan_id: str, data: str, ttl: int) -> None:
        await self.r.set(f"{P}plan:{plan_id}", data, ex=ttl)

    async def load_plan(self, plan_id: str) -> str | None:
        raw = await self.r.get(f"{P}plan:{plan_id}")
        return raw.decode() if isinstance(raw, bytes) else raw

    async def ping(self) -> bool:
        try:
            return bool(await self.r.ping())
        except (RedisConnectionError, RedisTimeoutError):
            return False
