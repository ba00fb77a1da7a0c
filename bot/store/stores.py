"""One `open_store(url)` builds every port of the store on one Redis (or Sentinel service): the
composition root, the CLI and the terminal front get their store here, and nothing else opens a
Redis client of Rewind's (saq's queue aside: `bot.store.queue.make_queue`)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.ports import HeldNotices
from bot.store import keys
from bot.store.connection import (
    Outage,
    blocking_connections,
    connect,
    parse_url,
    persistence_warning,
)
from bot.store.errors import store_error
from bot.store.held import RedisHeldNotices
from bot.store.memory import MemoryStore
from bot.store.pending import PendingCommands
from bot.store.quick_line import QuickLine
from bot.store.redis_store import RETENTION, RedisStore
from bot.store.watches import WatchStore
from bot.workflow.errors import StoreUnavailable

CLOSE_WAIT = 1.0  # seconds to close the clients; nothing is left to flush in them


@dataclass
class RedisStores:
    """The store's ports on Redis (`bot.ports.Stores` and more)."""

    incidents: RedisStore  # bot.ports.Store: incidents, freezes, plans, idempotency keys
    watches: WatchStore  # bot.watch.ports.WatchStore: deploys, watches, baselines, quarantine
    held: RedisHeldNotices  # bot.ports.HeldNotices
    commands: PendingCommands  # bot.ports.PendingCommands; its records on a client of their own
    _clients: list[aioredis.Redis] = field(default_factory=list)

    @property
    def locks(self) -> RedisStore:
        """bot.ports.Locks (the incidents' store: an ended incident frees its lock in its save)."""
        return self.incidents

    @property
    def audit(self) -> RedisStore:
        """bot.ports.AuditTrail (the incidents' store: a trail expires with its incident)."""
        return self.incidents

    async def server_id(self) -> str:
        """Which Redis server answers (its run id changes on a restart or a failover)."""
        try:
            info = await self.incidents.r.info("server")
        except RedisError as exc:
            raise store_error(exc) from exc
        return str(info.get("run_id", ""))[:12]

    async def persistence_warning(self) -> str | None:
        """One line when Redis keeps nothing on disk (or will not say), else None."""
        return await persistence_warning(self.incidents.r)

    async def aclose(self) -> None:
        # A client still reconnecting to a Redis that is away holds its pool's lock for up to a
        # minute: its disconnect would wait that long, and SIGTERM must end an idle process.
        closing = asyncio.gather(
            self.commands.aclose(), *(c.aclose() for c in self._clients), return_exceptions=True
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing, CLOSE_WAIT)


def open_store(
    url: str, *, outage: Outage | None = None, retention: float = RETENTION, owner: str = ""
) -> RedisStores:
    """Every port on the Redis of `url`; no connection until the first call.

    `owner`: the process the acked commands it works on are leased to (its worker id).
    """
    client = connect(url, outage=outage)
    # The acks' records go through a client of their own: its connection is never taken by the
    # work after the acks, so a batch never waits for a new one.
    records = connect(url, outage=outage)
    quick = QuickLine(blocking_connections(url), keys.RECORD_COMMANDS)
    replicas = 1 if parse_url(url).sentinel else 0
    return RedisStores(
        incidents=RedisStore(client, retention=retention, replicas=replicas),
        watches=WatchStore(client),
        held=RedisHeldNotices(client),
        commands=PendingCommands(client, owner=owner, records=records, quick=quick),
        _clients=[client, records],
    )


@dataclass
class MemoryStores:
    """`bot.ports.Stores` in this process: a plan without Redis, the demo."""

    incidents: MemoryStore = field(default_factory=MemoryStore)
    held: HeldNotices | None = None  # nowhere to keep a notice for another process

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class StoreOpener:
    """`bot.ports.StoreOpener` for the terminal front, from REDIS_URL."""

    url: str
    retention: float = RETENTION

    def open(self) -> RedisStores:
        return open_store(self.url, retention=self.retention)

    async def reach(self) -> RedisStores:
        await ping_once(self.url)
        return self.open()

    def memory(self) -> MemoryStores:
        return MemoryStores()


async def ping_once(url: str) -> None:
    """One PING without the store's retries: the real reason at once, not after a minute.
    (A Sentinel URL goes through the store's own client: it has to find the primary.)

    Raises `StoreUnavailable` with Redis's own words ('' when it did not answer in time)."""
    if parse_url(url).sentinel:
        client = connect(url)
    else:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3,
                                         retry=Retry(NoBackoff(), 0))  # fmt: skip
    try:
        await asyncio.wait_for(client.ping(), 10)
    except (TimeoutError, OSError, RedisError) as exc:
        raise StoreUnavailable(str(exc)) from exc
    finally:
        await client.aclose()
