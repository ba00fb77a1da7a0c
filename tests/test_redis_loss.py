"""Redis connections that drop are retried with backoff: the store rides the outage out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from bot.store.redis_store import RedisStore, connect
from bot.workflow.machine import new_steps
from bot.workflow.model import Incident


class Proxy:
    """A TCP forwarder in front of the real Redis whose connections a test can cut."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream  # the test's Redis, never a fixed port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.accepting = True

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        for w in self.writers:
            w.close()
        self.writers.clear()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[tuple[Proxy, str]]:
    parts = urlsplit(redis_url)
    p = Proxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    port = await p.start()
    yield p, f"redis://127.0.0.1:{port}/{redis_url.rsplit('/', 1)[1]}"
    p.cut()
    assert p.server is not None
    p.server.close()


def incident() -> Incident:
    return Incident(id="r3d1s0", app="myapp", environment="staging", requested_version="v1",
                    reason="x", requested_by="U0CAROL", steps=new_steps())  # fmt: skip


async def test_a_dropped_connection_is_retried(
    proxy: tuple[Proxy, str], caplog: pytest.LogCaptureFixture
) -> None:
    p, url = proxy
    store = RedisStore(connect(url))
    try:
        await store.create(incident())
        p.cut()
        loaded = await store.load("r3d1s0")
        assert loaded is not None and loaded.reason == "x"
        assert "Redis connection lost" in caplog.text  # reported, not hidden
        p.cut()
        await store.audit("r3d1s0", "U0CAROL", "opened")
        assert [e["what"] for e in await store.timeline("r3d1s0")] == ["opened"]
    finally:
        await store.r.aclose()


async def test_redis_down_for_a_while_is_survived(proxy: tuple[Proxy, str]) -> None:
    p, url = proxy
    store = RedisStore(connect(url))
    try:
        await store.create(incident())
        p.accepting = False
        p.cut()

        async def come_back() -> None:
            await asyncio.sleep(1.0)
            p.accepting = True

        back = asyncio.create_task(come_back())
        loaded = await store.load("r3d1s0")  # retried with backoff until Redis answers again
        await back
        assert loaded is not None
    finally:
        await store.r.aclose()
