"""Commands acknowledged but not yet carried out, kept in Redis so that none is lost.

The ack goes out within Slack's 3 seconds; the work (repo, Redis, Slack calls) comes after it in
the same process. A web process killed in between would leave the user with "Checking…" and
nothing else. So the ack first records the command (one round trip) with a short lease; the
process that works on it keeps the lease alive and drops the record when done. A record whose
lease ran out belongs to a dead process: any web process takes it over and carries it out.
The leases of every command a process holds are renewed together, one round trip each time,
and taking over a dead process's commands is one round trip too, however many there are.

A record goes first by the quick line (`bot.store.quick_line`): written and answered within the
turn of the event loop that acks, so that a recorded command's ack waits no more turns than a
`help`'s. When that line is not ready (not yet open, a failure, Redis slow to answer), the
records go to Redis in batches, each batch one script call (`keys.RECORD_COMMANDS`, sent
by its SHA: the script's text only when Redis does not know it yet, not with every batch). Two
batches may be in flight at once, each on a connection of its own: the command acked just after
a batch went out goes at once instead of waiting a whole round trip for it, and the commands
acked while both are out go together in the next one. (With one command per call, a burst of
acks took a connection of the pool each, and opening the new ones, a handshake of several round
trips each waiting its turn on a loop busy with the burst, is where the slowest acks spent their
time; with one batch at a time, a command acked just after a batch left waited for that batch's
answer before its own went.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.store import keys
from bot.store.errors import translating
from bot.store.quick_line import QuickLine

log = logging.getLogger(__name__)

LEASE = 10  # seconds a command stays with its process without a renewal
SEEN_FOR = 3600  # seconds a command's trigger is remembered: Slack retries within minutes
TOO_OLD = 25 * 60  # Slack's response_url lives 30 minutes: older commands are only dropped
IN_FLIGHT = 2  # batches of records out at once, each on a connection of its own
KEPT = ("text", "user_id", "channel_id", "response_url", "trigger_id", "command", "team_id")


@translating
class PendingCommands:
    """`bot.ports.PendingCommands` on Redis."""

    def __init__(
        self,
        r: aioredis.Redis,
        *,
        owner: str,
        lease: int = LEASE,
        records: aioredis.Redis | None = None,
        quick: QuickLine | None = None,
    ) -> None:
        self.r = r
        # The records go through a client of their own when given: its connection is never
        # taken by the work after the acks, so a batch never waits for a new one.
        self.records = records or r
        self.quick = quick
        self.owner = owner
        self.lease = lease
        # Commands waiting for the batch being gathered: (key, the record, its token, its
        # outcome).
        self._batch: list[tuple[str, str, str, asyncio.Future[bool]]] = []
        self._sending = asyncio.Semaphore(IN_FLIGHT)
        self._script = self.records.register_script(keys.RECORD_COMMANDS)
        self._renew_script = self.r.register_script(keys.RENEW_LEASES)
        self._held: set[str] = set()  # the commands this process works on (or waits to)
        self._renewing: asyncio.Task[None] | None = None

    def _lease_key(self, key: str) -> str:
        return keys.command_lease(key)

    async def record(self, key: str, body: dict[str, Any]) -> bool:
        """Keep the command before the ack; False when it was seen before (a Slack retry)."""
        kept = {k: str(body.get(k, ""))[:12_000] for k in KEPT}
        kept["at"] = str(time.time())
        record, token = json.dumps(kept), uuid.uuid4().hex
        recorded = self._quickly(key, record, token)
        if recorded is None:
            recorded = await self._by_batch(key, record, token)
        if recorded:
            # This process's from now on: its lease is kept alive while the command waits its
            # turn after the ack, until `working` forgets it.
            self._hold(key)
            return True
        return False

    def _script_call(
        self, commands: list[tuple[str, str, str]]
    ) -> tuple[list[str], list[str | int]]:
        """`keys.RECORD_COMMANDS`'s keys and arguments for (key, record, token) commands."""
        names = [keys.COMMANDS]
        args: list[str | int] = [self.owner, SEEN_FOR, self.lease]
        for key, record, token in commands:
            names += (keys.seen_command(key), self._lease_key(key))
            args += (key, record, token)
        return names, args

    def _quickly(self, key: str, record: str, token: str) -> bool | None:
        """The record by the quick line: None where it was not (the batch path takes it)."""
        if self.quick is None:
            return None
        try:
            out = self.quick.run(*self._script_call([(key, record, token)]))
        except (RedisError, OSError) as exc:
            log.debug("a record went by the batch path: %s", exc)
            return None
        return None if out is None else bool(out[0])

    async def _by_batch(self, key: str, record: str, token: str) -> bool:
        fresh: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._batch.append((key, record, token, fresh))
        if len(self._batch) == 1:
            await self._send_batch(fresh)  # the first command of a batch sends it for all
        return await fresh

    def _hold(self, key: str) -> None:
        self._held.add(key)
        if self._renewing is None or self._renewing.done():
            self._renewing = asyncio.get_running_loop().create_task(self._renew())

    async def _send_batch(self, mine: asyncio.Future[bool]) -> None:
        """Each command's outcome goes to its future; only a cancellation is raised here."""
        batch: list[tuple[str, str, str, asyncio.Future[bool]]] = []
        try:
            # `IN_FLIGHT` batches out at a time: the next one gathers meanwhile.
            async with self._sending:
                batch, self._batch = self._batch, []
                commands = [(key, kept, token) for key, kept, token, _ in batch]
                names, args = self._script_call(commands)
                # One script for the whole batch: one command to send, one answer to read (EVALSHA;
                # the script is loaded again if Redis has forgotten it, after a restart).
                results = await cast(Awaitable[list[int]], self._script(names, args))
        except asyncio.CancelledError:
            if not batch:  # cancelled while the batch before it was in flight
                batch, self._batch = self._batch, []
            # The sender's ack ran out of time, and so did the batch: a timeout for the others.
            for *_, fresh in batch:
                if fresh is mine:
                    fresh.cancel()
                elif not fresh.done():
                    fresh.set_exception(TimeoutError("the command was not kept in time"))
            raise
        except Exception as exc:
            for *_, fresh in batch:
                if not fresh.done():
                    fresh.set_exception(exc)
            return
        for (*_, fresh), result in zip(batch, results, strict=True):
            if not fresh.done():
                fresh.set_result(bool(result))

    def open_quick_line(self) -> None:
        """The quick line's connections, opened now rather than by the first acks."""
        if self.quick is not None:
            self.quick.open()

    async def aclose(self) -> None:
        if self.quick is not None:
            await self.quick.aclose()

    @contextlib.asynccontextmanager
    async def working(self, key: str) -> AsyncIterator[None]:
        """While the command is carried out: keep its lease; afterwards, forget it."""
        self._hold(key)
        try:
            yield
        finally:
            self._held.discard(key)
            with contextlib.suppress(Exception):
                pipe = self.r.pipeline(transaction=False)
                pipe.hdel(keys.COMMANDS, key)
                pipe.delete(self._lease_key(key))
                await pipe.execute()

    async def _renew(self) -> None:
        """Every held command's lease, renewed in one round trip (one script), until none is
        held."""
        while self._held:
            await asyncio.sleep(self.lease / 3)
            held = list(self._held)
            if not held:
                return
            with contextlib.suppress(Exception):
                leases = [self._lease_key(key) for key in held]
                await self._renew_script(leases, [self.owner, self.lease])

    async def orphans(self) -> list[tuple[str, dict[str, str]]]:
        """Commands whose process died, each now leased to this process (and kept so until
        `working` forgets it); too old ones dropped.

        Cheap when there are none, however many commands live processes hold: their keys only,
        then one round trip for the leases; the records themselves only for the ones taken."""
        names = cast(list[str], await self.r.hkeys(keys.COMMANDS))
        others = [key for key in names if key not in self._held]
        if not others:
            return []
        # A lease taken only where none is left: a live process (or another web process that
        # took it just now) keeps its own.
        pipe = self.r.pipeline(transaction=False)
        for key in others:
            pipe.set(self._lease_key(key), self.owner, nx=True, ex=self.lease)
        got = await pipe.execute()
        mine = [key for key, ok in zip(others, got, strict=True) if ok]
        if not mine:
            return []
        values = cast(list[str | None], await self.r.hmget(keys.COMMANDS, mine))
        taken: list[tuple[str, dict[str, str]]] = []
        stale: list[str] = []
        for key, value in zip(mine, values, strict=True):
            if value is None:  # carried out and forgotten meanwhile
                continue
            try:
                body = json.loads(value)
            except ValueError:
                body = {}
            if not isinstance(body, dict) or time.time() - float(body.get("at", 0)) > TOO_OLD:
                log.warning("dropped a pending command too old to answer (%s)", key)
                stale.append(key)
                continue
            taken.append((key, {k: str(v) for k, v in body.items()}))
            self._hold(key)  # this process's now, until `working` forgets it
        if stale:
            await self.r.hdel(keys.COMMANDS, *stale)
        return taken
