"""The acks' records by the quick line (`bot.store.quick_line`): answered within the loop's turn
on a real Redis; every other case (no line yet, Redis slow to answer, a lost answer, a Redis
that forgot its scripts) still records each command once, by the batch path, and never takes
a command for a Slack retry of itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError

from bot.store import keys
from bot.store.connection import blocking_connections, connect
from bot.store.keys import PREFIX as P
from bot.store.pending import PendingCommands
from bot.store.quick_line import Connection, QuickLine
from tests.test_pending_commands import body, silent_server


async def opened(line: QuickLine) -> QuickLine:
    line.open()
    async with asyncio.timeout(10):
        while len(line._idle) < line._lines:  # noqa: ASYNC110 (opened by a thread)
            await asyncio.sleep(0.01)
    return line


@contextlib.asynccontextmanager
async def pending_on(
    redis_url: str, quick: QuickLine, records: aioredis.Redis | None = None
) -> AsyncIterator[PendingCommands]:
    pending = PendingCommands(connect(redis_url), owner="web-1", quick=quick,
                              records=records or connect(redis_url))  # fmt: skip
    try:
        yield pending
    finally:
        pending._held.clear()  # none is carried out here: no lease to keep alive
        await pending.aclose()
        await pending.records.aclose(close_connection_pool=True)
        await pending.r.aclose()


@pytest.mark.timeout(30)
async def test_a_record_is_answered_by_the_quick_line_without_the_batch_path(
    redis_url: str,
) -> None:
    """With the quick line open, the batch path (here a Redis that never answers) is not used:
    each command is kept, a Slack retry is still told apart."""
    line = await opened(QuickLine(blocking_connections(redis_url), keys.RECORD_COMMANDS))
    async with silent_server() as (port, held):
        hanging = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=20)
        async with pending_on(redis_url, line, hanging) as pending:
            async with asyncio.timeout(5):
                outcomes = [await pending.record(k, body(i)) for i, k in enumerate("abc")]
                retry = await pending.record("b", body(1))

            assert outcomes == [True, True, True]
            assert retry is False
            assert held == []  # no batch went out
            kept = await pending.r.hgetall(f"{P}commands")
            assert sorted(kept) == ["a", "b", "c"]
            assert json.loads(kept["b"])["trigger_id"] == "trigger-1"
            assert await pending.r.get(f"{P}command-lease:b") == "web-1"


class Wrapped:
    """A real connection, as it is; the cases below change one thing each."""

    def __init__(self, real: Connection) -> None:
        self.real = real
        self.closed = False

    def connect(self) -> None:
        self.real.connect()

    def send_command(self, *args: Any) -> None:
        self.real.send_command(*args)

    def can_read(self, timeout: float = 0) -> bool:
        return self.real.can_read(timeout)

    def read_response(self) -> Any:
        return self.real.read_response()

    def disconnect(self) -> None:
        self.closed = True
        self.real.disconnect()


class LosingAnswers(Wrapped):
    """A real connection whose answer is lost on the way after Redis has carried out the
    command (a connection reset just then)."""

    def can_read(self, timeout: float = 0) -> bool:
        self.real.can_read(timeout=1)  # Redis has answered: the command was carried out
        raise RedisConnectionError("Connection reset by peer")


@pytest.mark.timeout(30)
async def test_a_record_whose_answer_was_lost_is_not_taken_for_a_retry(redis_url: str) -> None:
    """The record reached Redis by the quick line, its answer did not come back: the batch path
    sends it again and hears it was this very command (its token), not a Slack retry."""
    make = blocking_connections(redis_url)
    line = await opened(QuickLine(lambda: LosingAnswers(make()), keys.RECORD_COMMANDS))
    async with pending_on(redis_url, line) as pending:
        assert await pending.record("k1", body(1)) is True
        assert await pending.r.hkeys(f"{P}commands") == ["k1"]
        assert await pending.record("k1", body(1)) is False  # a real retry, from Slack


def counting_batches(pending: PendingCommands) -> list[int]:
    """A 1 for each batch the batch path sends from now on."""
    sent: list[int] = []
    script = pending._script

    async def counting(*args: Any, **kwargs: Any) -> Any:
        sent.append(1)
        return await script(*args, **kwargs)

    pending._script = counting  # type: ignore[assignment]
    return sent


class Slow(Wrapped):
    """A real connection to a Redis that takes `delay` seconds to answer."""

    def __init__(self, real: Connection, delay: float) -> None:
        super().__init__(real)
        self.delay = delay

    def can_read(self, timeout: float = 0) -> bool:
        return False if timeout < self.delay else self.real.can_read(timeout)

    def read_response(self) -> Any:
        import time

        time.sleep(self.delay)
        return self.real.read_response()


@pytest.mark.timeout(30)
async def test_a_slow_answer_sends_the_record_by_the_batch_path_and_the_line_stands_aside(
    redis_url: str,
) -> None:
    """Redis slower than the quick line's wait: the ack does not wait for the line; its record
    goes by the batch path as well (kept once, not a retry of itself); the next records go by
    the batch path while the line stands aside, and the line's connection is used again once
    its late answer is read."""
    make = blocking_connections(redis_url)
    line = await opened(QuickLine(lambda: Slow(make(), 0.5), keys.RECORD_COMMANDS, lines=1))
    async with pending_on(redis_url, line) as pending:
        sent = counting_batches(pending)
        assert await pending.record("k1", body(1)) is True
        assert sent == [1]  # by the batch path
        assert await pending.record("k2", body(2)) is True
        assert sent == [1, 1]  # the line stands aside
        async with asyncio.timeout(5):
            while not line._idle:  # noqa: ASYNC110 (the late answer read by a thread)
                await asyncio.sleep(0.05)
        assert sorted(await pending.r.hkeys(f"{P}commands")) == ["k1", "k2"]
        assert await pending.record("k1", body(1)) is False


@pytest.mark.timeout(30)
async def test_a_redis_that_forgot_the_script_still_keeps_each_record(redis_url: str) -> None:
    """After a restart Redis knows no script: the quick line hears NOSCRIPT, the batch path
    loads the script and keeps the record, and the quick line answers the next ones."""
    line = await opened(QuickLine(blocking_connections(redis_url), keys.RECORD_COMMANDS))
    async with pending_on(redis_url, line) as pending:
        sent = counting_batches(pending)
        plain = redis.Redis.from_url(redis_url)
        plain.script_flush()
        plain.close()
        assert await pending.record("k1", body(1)) is True
        assert sent == [1]  # by the batch path, which loaded the script again
        async with asyncio.timeout(5):
            while len(line._idle) < 2:  # noqa: ASYNC110 (the line loads it too, by a thread)
                await asyncio.sleep(0.01)
        assert await pending.record("k2", body(2)) is True
        assert sent == [1]  # by the quick line
        assert sorted(await pending.r.hkeys(f"{P}commands")) == ["k1", "k2"]


class Demoted(Wrapped):
    """A real connection to a primary that a failover has just made a replica."""

    def read_response(self) -> Any:
        reply = self.real.read_response()
        if reply and reply[0] == 1:  # the script ran: the failover comes just after
            raise ReadOnlyError("You can't write against a read only replica.")
        return reply


@pytest.mark.timeout(30)
async def test_a_demoted_primary_drops_the_line_and_the_record_is_kept_by_the_batch_path(
    redis_url: str,
) -> None:
    """READONLY from the line's Redis (a failover): its connection is closed, so that the next
    one asks again where the primary is; the record is kept once, by the batch path."""
    make = blocking_connections(redis_url)
    made: list[Demoted] = []

    def demoted() -> Demoted:
        made.append(Demoted(make()))
        return made[-1]

    line = await opened(QuickLine(demoted, keys.RECORD_COMMANDS, lines=1))
    async with pending_on(redis_url, line) as pending:
        sent = counting_batches(pending)
        assert await pending.record("k1", body(1)) is True
        assert sent == [1]
        assert [m.closed for m in made] == [True]
        assert line._idle == []
        assert await pending.r.hkeys(f"{P}commands") == ["k1"]
