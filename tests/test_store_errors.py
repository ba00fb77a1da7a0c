"""The store speaks in domain errors: a Redis that cannot be reached is `StoreUnavailable` at every
port of `open_store`, a command Redis refuses is a `StoreError`; never a redis exception."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.ports import HeldNotice
from bot.store import keys
from bot.store.held import RedisHeldNotices
from bot.store.pending import PendingCommands
from bot.store.queue import SaqStepQueue, make_queue
from bot.store.redis_store import RedisStore
from bot.store.stores import StoreOpener, open_store
from bot.store.watches import WatchStore
from bot.workflow.errors import StoreError, StoreUnavailable
from bot.workflow.model import StepId


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _calls(client: aioredis.Redis) -> list[Callable[[], Awaitable[Any]]]:
    store, watches = RedisStore(client), WatchStore(client)
    held, pending = RedisHeldNotices(client), PendingCommands(client, owner="web-1")
    return [
        lambda: store.load("abc123"),
        lambda: store.acquire_lock("myapp", "abc123"),
        lambda: store.audit("abc123", "U0CAROL", "test"),
        lambda: watches.latest("myapp"),
        lambda: held.count(),
        lambda: held.hold(HeldNotice("abc123", "C0X", "text", "2026-01-01T00:00:00+00:00")),
        lambda: pending.orphans(),
        lambda: pending.record("cmd-1", {"text": "status"}),
    ]


async def test_every_port_says_store_unavailable_when_redis_does_not_answer() -> None:
    # No retries: the answer at once (the real clients retry for a minute, then say the same).
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    client = aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), decode_responses=True)
    try:
        for call in _calls(client):
            with pytest.raises(StoreUnavailable) as caught:
                await call()
            assert not isinstance(caught.value, RedisError)
            assert "Connection refused" in str(caught.value) or "111" in str(caught.value)
    finally:
        await client.aclose()


async def test_the_queue_says_store_unavailable_too() -> None:
    queue = make_queue(f"redis://127.0.0.1:{_closed_port()}/0", "test")
    queue.redis.connection_pool.connection_kwargs["retry"] = Retry(NoBackoff(), 0)
    try:
        with pytest.raises(StoreUnavailable):
            await SaqStepQueue(queue).enqueue_step("abc123", StepId.ASSESS, 1)
    finally:
        with contextlib.suppress(RedisError):  # saq's own close of a pubsub it never opened
            await queue.disconnect()


async def test_a_command_redis_refuses_is_a_store_error(redis_url: str) -> None:
    stores = open_store(redis_url)
    try:
        await stores.incidents.r.set(keys.HELD_NOTICES, "not a list")
        with pytest.raises(StoreError) as caught:
            await stores.held.count()
        assert not isinstance(caught.value, StoreUnavailable | RedisError)
        assert "WRONGTYPE" in str(caught.value)
    finally:
        await stores.incidents.r.delete(keys.HELD_NOTICES)
        await stores.aclose()


async def test_the_terminal_opener_refuses_at_once_with_redis_words() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        await StoreOpener(f"redis://127.0.0.1:{_closed_port()}/0").reach()
    assert "Connection refused" in str(caught.value) or "111" in str(caught.value)


async def test_held_notices_come_back_in_order_and_once(redis_url: str) -> None:
    stores = open_store(redis_url)
    first = HeldNotice("abc123", "C0A", "started", "2026-01-01T00:00:00+00:00")
    second = HeldNotice("abc123", "C0B", "started", "2026-01-01T00:00:01+00:00")
    try:
        await stores.held.hold(first)
        await stores.held.hold(second)
        assert await stores.held.held() == [first, second]
        assert await stores.held.take() == first
        await stores.held.put_back(first)
        assert [await stores.held.take() for _ in range(3)] == [second, first, None]
    finally:
        await stores.aclose()
