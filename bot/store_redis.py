"""The Redis store: incidents as JSON with compare-and-set, a fenced per-app lock, audit streams.

Every key lives under `rewind:`. Writes that race (two workers, a click and a step result) are
settled by the incident's version: a stale write is refused and the caller re-reads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.ports import AuditEntry, Freeze
from bot.workflow.model import Incident
from bot.workflow.schema import load_incident

log = logging.getLogger(__name__)
T = TypeVar("T")
P = "rewind:"

_SAVE = """
local cur = redis.call('GET', KEYS[1])
local expected = tonumber(ARGV[2])
if cur then
  if cjson.decode(cur)['version'] ~= expected then return 0 end
elseif expected ~= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[3] == '1' then redis.call('SADD', KEYS[2], ARGV[4])
else redis.call('SREM', KEYS[2], ARGV[4]) end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
return 1
"""

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder then return {0, holder} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token)
return {token, ARGV[1]}
"""

_RELEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and string.match(holder, '^(.*):') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class ReportingRetry(Retry):
    """Retry with backoff, and say so in the log: an outage must be visible, never a crash."""

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        async def reported(error: Exception, *count: int) -> None:
            log.warning("Redis connection lost (%s); retrying with backoff", error)
            await fail(error, *count)

        return await super().call_with_retry(do, reported, is_retryable, with_failure_count)


def connect(url: str) -> aioredis.Redis:
    """A client that rides out a Redis restart: retried with backoff, never a crash."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        retry=ReportingRetry(ExponentialBackoff(cap=5, base=0.1), retries=8),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
        socket_connect_timeout=5,
    )


class RedisStore:
    """`bot.ports.Store` on Redis."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.r = client
        self._save = client.register_script(_SAVE)
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
            keys=[f"{P}incident:{incident.id}", f"{P}open", f"{P}recent"],
            args=[
                incident.model_dump_json(),
                expected,
                "1" if incident.status.open else "0",
                incident.id,
                incident.created_at.timestamp(),
            ],
        )
        if not ok:
            incident.version = expected
        return bool(ok)

    async def acquire_lock(self, app: str, incident_id: str) -> int | str:
        token, holder = await self._acquire(
            keys=[f"{P}lock:{app}", f"{P}fence:{app}"], args=[incident_id]
        )
        if int(token) == 0:
            return str(holder).rsplit(":", 1)[0]
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
        entry = {"at": datetime.now(UTC).isoformat(), "who": who, "what": what, "result": result}
        await self.r.xadd(f"{P}audit:{incident_id}", cast(Any, entry))

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
