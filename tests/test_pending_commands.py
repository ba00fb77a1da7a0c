"""The commands an ack keeps in Redis (`bot.store.pending`), kept in batches: a burst of acks
shares round trips, and each command still gets its own answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.store.connection import connect
from bot.store.keys import PREFIX as P
from bot.store.pending import PendingCommands


def body(i: int) -> dict[str, str]:
    return {"text": f"myapp v1.4.{i} checkout returns 500", "user_id": f"U{i}",
            "trigger_id": f"trigger-{i}", "response_url": f"https://hooks.example/{i}"}  # fmt: skip


async def test_a_burst_of_commands_each_kept_once_under_its_own_key(redis_url: str) -> None:
    r = connect(redis_url)
    pending = PendingCommands(r, owner="web-1", records=connect(redis_url))
    try:
        keys = [f"k{i}" for i in range(30)] + ["k7"]  # the last one: a Slack retry of k7
        fresh = await asyncio.gather(*(pending.record(k, body(int(k[1:]))) for k in keys))

        assert fresh == [True] * 30 + [False]
        kept = await r.hgetall(f"{P}commands")
        assert sorted(kept) == sorted(keys[:30])
        for key, value in kept.items():
            assert json.loads(value)["trigger_id"] == f"trigger-{key[1:]}"
            assert await r.get(f"{P}command-lease:{key}") == "web-1"
        # The next command after the burst is kept as well (nothing left waiting).
        assert await pending.record("after", body(99)) is True
        pending._held.clear()  # none is carried out here: no lease to keep alive
    finally:
        await pending.records.aclose()
        await r.aclose()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[int, list[asyncio.StreamWriter]]]:
    """A TCP server that takes connections and never answers: a Redis that hangs (its port, and
    the connections it has taken)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], held
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.timeout(30)
async def test_acks_whose_store_hangs_each_hear_a_timeout(redis_url: str) -> None:
    async with silent_server() as (port, _):
        hanging = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=20)
        pending = PendingCommands(connect(redis_url), owner="web-1", records=hanging)

        async def ack(i: int, wait: float) -> bool:
            async with asyncio.timeout(wait):  # as the ack's store check
                return await pending.record(f"k{i}", body(i))

        # Two batches in flight (the first ack's, the second's), each on a connection of its
        # own; the third one (led by the third ack) gathered behind them. When its leader gives
        # up, the acks in its batch hear it at once, as a timeout: none waits for its own much
        # later deadline, none is told it was cancelled.
        waits = [0.2, 0.3, 0.4, 60, 60]
        outcomes = await asyncio.gather(
            *(ack(i, wait) for i, wait in enumerate(waits)), return_exceptions=True
        )

        assert [type(o) for o in outcomes] == [TimeoutError] * 5, outcomes
        await pending.r.aclose()
        await hanging.aclose(close_connection_pool=True)


@pytest.mark.timeout(30)
async def test_a_second_batch_goes_while_the_first_is_out(redis_url: str) -> None:
    """The command acked just after a batch left does not wait for that batch's answer: its own
    batch goes out on a second connection at once. A third waits for one of them."""
    async with silent_server() as (port, held):
        hanging = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=20)
        pending = PendingCommands(connect(redis_url), owner="web-1", records=hanging)
        acks = [asyncio.create_task(pending.record(f"k{i}", body(i))) for i in range(4)]
        try:
            async with asyncio.timeout(10):
                while len(held) < 2:  # noqa: ASYNC110 (the server's connections, as they come)
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            assert len(held) == 2  # two batches out; the third gathers until one comes back
            assert not any(ack.done() for ack in acks)
        finally:
            for ack in acks:
                ack.cancel()
            await asyncio.gather(*acks, return_exceptions=True)
            await pending.r.aclose()
            await hanging.aclose(close_connection_pool=True)


async def test_a_command_waiting_its_turn_keeps_its_lease(redis_url: str) -> None:
    """Behind a burst, a command may wait longer than a lease: it stays this process's, and
    another web process never carries it out a second time."""
    from typing import Any, cast

    from bot.fronts.slack.listeners import SlackFront

    here = PendingCommands(connect(redis_url), owner="web-1", lease=1)
    other = PendingCommands(connect(redis_url), owner="web-2", lease=1)
    nothing = cast(Any, None)
    front = SlackFront(nothing, nothing, nothing, nothing, pending=here, at_once=1)
    release = asyncio.Event()
    carried: list[str] = []
    acked: list[str | None] = []

    async def carry_out(body: dict[str, str], respond: Any, *, resumed: bool = False) -> None:
        carried.append(body["trigger_id"])
        await release.wait()

    async def ack(text: str | None = None, **_: Any) -> None:
        acked.append(text)

    front._carry_out = carry_out  # type: ignore[method-assign]
    try:
        first, second = ({**body(i), "text": "list"} for i in (1, 2))
        for command in (first, second):  # each recorded, acked, its work started after
            await front.ack_command(command, cast(Any, ack))
        assert acked == [None, None]
        assert len(await here.r.hkeys(f"{P}commands")) == 2  # both kept before their acks
        await asyncio.sleep(2.5)  # the second waits behind the first for over two leases
        assert carried == ["trigger-1"]
        assert await other.orphans() == []  # web-2 finds nothing left by a dead process
        release.set()
        await front.after.drain(10)
        assert carried == ["trigger-1", "trigger-2"]
        assert await here.r.hgetall(f"{P}commands") == {}
        # A Slack retry of a command already kept: acked the same, nothing carried out again.
        await front.ack_command(first, cast(Any, ack))
        await front.after.drain(10)
        assert carried == ["trigger-1", "trigger-2"]
    finally:
        release.set()
        await front.responses.aclose()
        await here.r.aclose()
        await other.r.aclose()


async def test_a_dead_process_commands_are_taken_over_once_each(redis_url: str) -> None:
    """Another process takes every command whose lease ran out, each leased to it, in one go;
    a command too old to answer is dropped; the next look finds nothing left to take."""
    dead = PendingCommands(connect(redis_url), owner="web-1", lease=1)
    alive = PendingCommands(connect(redis_url), owner="web-2", lease=5)
    try:
        for i in (1, 2, 3):
            assert await dead.record(f"k{i}", body(i))
        dead._held.clear()  # web-1 is killed: nothing renews its leases any more
        old = json.loads(await dead.r.hget(f"{P}commands", "k3"))
        await dead.r.hset(f"{P}commands", "k3", json.dumps({**old, "at": "0"}))
        assert await alive.orphans() == []  # web-1's leases still run
        await asyncio.sleep(1.5)

        taken = await alive.orphans()

        assert sorted((k, b["trigger_id"]) for k, b in taken) == [
            ("k1", "trigger-1"),
            ("k2", "trigger-2"),
        ]
        for key in ("k1", "k2"):
            assert await alive.r.get(f"{P}command-lease:{key}") == "web-2"
        assert sorted(await alive.r.hkeys(f"{P}commands")) == ["k1", "k2"]  # k3: dropped
        assert await alive.orphans() == []
        for key, _ in taken:
            async with alive.working(key):
                pass
        assert await alive.r.hgetall(f"{P}commands") == {}
    finally:
        await dead.r.aclose()
        await alive.r.aclose()
