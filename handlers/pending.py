"""Commands acknowledged but not yet carried out, kept in Redis so that none is lost.

The ack goes out within Slack's 3 seconds; the work (repo, Redis, Slack calls) comes after it in
the same process. A web process killed in between would leave the user with "Checking…" and
nothing else. So the ack first records the command (one round trip) with a short lease; the
process that works on it keeps the lease alive and drops the record when done. A record whose
lease ran out belongs to a dead process: any web process takes it over and carries it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

P = "rewind:"
LEASE = 10  # seconds a command stays with its process without a renewal
TOO_OLD = 25 * 60  # Slack's response_url lives 30 minutes: older commands are only dropped
KEPT = ("text", "user_id", "channel_id", "response_url", "trigger_id", "command", "team_id")

# Seen-before check, record and lease in one round trip: a Slack retry of a command (same
# trigger) is not recorded again.
_RECORD = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4]) == false then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[5])
return 1
"""


class PendingCommands:
    def __init__(self, r: aioredis.Redis, *, owner: str, lease: int = LEASE) -> None:
        self.r = r
        self.owner = owner
        self.lease = lease
        self._record = r.register_script(_RECORD)

    def _lease_key(self, key: str) -> str:
        return f"{P}command-lease:{key}"

    async def record(self, key: str, body: dict[str, Any]) -> bool:
        """Keep the command before the ack; False when it was seen before (a Slack retry)."""
        kept = {k: str(body.get(k, ""))[:12_000] for k in KEPT}
        kept["at"] = str(time.time())
        fresh = await self._record(
            keys=[f"{P}seen:cmd:{key}", f"{P}commands", self._lease_key(key)],
            args=[key, json.dumps(kept), self.owner, 3600, self.lease],
        )
        return bool(fresh)

    @contextlib.asynccontextmanager
    async def working(self, key: str) -> AsyncIterator[None]:
        """While the command is carried out: keep its lease; afterwards, forget it."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease / 3)
                with contextlib.suppress(Exception):
                    await self.r.set(self._lease_key(key), self.owner, ex=self.lease)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):
                await self.r.hdel(f"{P}commands", key)
                await self.r.delete(self._lease_key(key))

    async def orphans(self) -> list[tuple[str, dict[str, str]]]:
        """Commands whose process died, each now leased to this process; too old ones dropped."""
        raw = cast(dict[str, str], await self.r.hgetall(f"{P}commands"))
        taken: list[tuple[str, dict[str, str]]] = []
        for key, value in raw.items():
            if await self.r.exists(self._lease_key(key)):
                continue  # a live process has it
            if not await self.r.set(self._lease_key(key), self.owner, nx=True, ex=self.lease):
                continue  # another web process took it just now
            try:
                body = json.loads(value)
            except ValueError:
                body = {}
            if not isinstance(body, dict) or time.time() - float(body.get("at", 0)) > TOO_OLD:
                log.warning("dropped a pending command too old to answer (%s)", key)
                await self.r.hdel(f"{P}commands", key)
                continue
            taken.append((key, {k: str(v) for k, v in body.items()}))
        return taken
