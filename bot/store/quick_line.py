"""The acks' records written and answered within the same turn of the event loop.

Read the asyncio way, Redis's answer comes back in a later turn of the loop, and under a burst
of requests each turn is the parsing and acking of every other request ready then: a recorded
command waited two or three such turns for its ack (about 20 ms at 50 requests at once on 2
cores) where a `help` waited none. Here the record goes out on a plain blocking socket and its
answer is read at once: the loop is held for one round trip to Redis (about 0.1 ms on a LAN),
never longer than `QUICK_WAIT`. A record not answered by then goes by the batch path
(`bot.store.pending`) as well, a thread reads the late answer so that the connection can serve
again, and the line stands aside for `SLOW_PAUSE`.

No retries and no outage reports here: every failure hands the record to the batch path, whose
client rides out a restart or a failover and says so. Each record carries a token of its own,
so that a record that reached Redis by both paths, or whose answer was lost, is not taken for a
Slack retry.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError

log = logging.getLogger(__name__)

QUICK_WAIT = 0.002  # seconds the loop may be held for an answer
SLOW_PAUSE = 10.0  # seconds the line stands aside after a slow answer or a failure
LINES = 2  # connections: a record whose answer is read aside leaves the other one free


class Connection(Protocol):
    """What the line uses of a blocking redis-py connection."""

    def connect(self) -> None: ...

    def send_command(self, *args: Any) -> None: ...

    def can_read(self, timeout: float = 0) -> bool: ...

    def read_response(self) -> Any: ...

    def disconnect(self) -> None: ...


class QuickLine:
    """One script, run on blocking connections of its own; `run` answers None when no
    connection is ready (the caller takes its other path)."""

    def __init__(self, make: Callable[[], Connection], script: str, *, lines: int = LINES) -> None:
        self._make = make
        self._script = script
        self._sha = hashlib.sha1(script.encode()).hexdigest()  # the id Redis knows it by
        self._lines = lines
        self._idle: list[Connection] = []
        self._open = 0  # connections open or opening
        self._opening: asyncio.Task[None] | None = None
        self._aside: set[asyncio.Future[Any]] = set()
        self._paused_until = 0.0

    def run(self, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """The script's answer, or None: no connection ready, the line stands aside, or the
        answer is late (it is read aside, and the caller sends the record by its other path).

        A plain function: it cannot leave the loop's turn. Raises what the connection or Redis
        raised: the caller goes on by its other path.
        """
        if time.monotonic() < self._paused_until:
            return None
        if not self._idle:
            self.open()
            return None
        conn = self._idle.pop()
        try:
            conn.send_command("EVALSHA", self._sha, len(keys), *keys, *args)
            answered = conn.can_read(timeout=QUICK_WAIT)
        except BaseException:
            self._drop(conn)
            raise
        if answered:
            return self._read(conn)
        self._stand_aside("Redis took over %.0f ms to answer a record", QUICK_WAIT * 1000)
        self._read_aside(conn)
        return None

    def _read(self, conn: Connection) -> Any:
        try:
            reply = conn.read_response()
        except NoScriptError:  # Redis restarted: the line is sound, the script is loaded again
            self._loading(conn)
            raise
        except ReadOnlyError:  # a primary demoted by a failover: the next one is found anew
            self._drop(conn)
            raise
        except ResponseError as exc:  # Redis refused it (out of memory…): the batch path says so
            self._idle.append(conn)
            self._stand_aside("Redis refused a record (%s)", exc)
            raise
        except BaseException:
            self._drop(conn)
            raise
        self._idle.append(conn)
        return reply

    def _read_aside(self, conn: Connection) -> None:
        """The late answer, read by a thread; only then is the connection used again."""
        self._aside_work(conn, conn.read_response)

    def _loading(self, conn: Connection) -> None:
        """The script loaded again by a thread; the connection is used again afterwards."""
        self._aside_work(conn, functools.partial(self._load_script, conn))

    def _aside_work(self, conn: Connection, work: Callable[[], Any]) -> None:
        reading = asyncio.ensure_future(asyncio.to_thread(work))
        self._aside.add(reading)
        reading.add_done_callback(functools.partial(self._after_aside, conn))

    def _after_aside(self, conn: Connection, reading: asyncio.Future[Any]) -> None:
        self._aside.discard(reading)
        error = None if reading.cancelled() else reading.exception()
        refused = isinstance(error, ResponseError) and not isinstance(error, ReadOnlyError)
        if reading.cancelled() or (error is not None and not refused):
            self._drop(conn)
        else:
            self._idle.append(conn)

    def open(self) -> None:
        """The missing connections, opened by a thread (their handshake would hold the loop)."""
        if self._open >= self._lines or (self._opening is not None and not self._opening.done()):
            return
        self._opening = asyncio.get_running_loop().create_task(self._open_missing())

    async def _open_missing(self) -> None:
        while self._open < self._lines:
            conn = self._make()
            self._open += 1
            try:
                await asyncio.to_thread(self._prepare, conn)
            except Exception as exc:
                self._open -= 1
                conn.disconnect()
                self._stand_aside("no connection to Redis for the records (%s)", exc)
                return
            self._idle.append(conn)

    def _prepare(self, conn: Connection) -> None:
        """Connected, and the script known to Redis (a thread's work: several round trips)."""
        conn.connect()
        self._load_script(conn)

    def _load_script(self, conn: Connection) -> None:
        conn.send_command("SCRIPT", "LOAD", self._script)
        conn.read_response()

    def _drop(self, conn: Connection) -> None:
        self._open -= 1
        conn.disconnect()
        self._stand_aside("a connection for the records failed")

    def _stand_aside(self, why: str, *args: object) -> None:
        log.debug("records by the batch path for %.0f s: " + why, SLOW_PAUSE, *args)
        self._paused_until = time.monotonic() + SLOW_PAUSE

    async def aclose(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
        if self._aside:
            await asyncio.wait(self._aside, timeout=1)
        for conn in self._idle:
            conn.disconnect()
        self._idle.clear()
