"""Monitoring's log reads: one SSH session per host for the whole window, not one per round.

The session's script first reads the host's clock (the window starts there, as the host tells
time), then reads the logs since then once per round: each read is a deferred command of the
same script, written once the clock is known and sent when the round comes, so a round costs a
line each way on the open session instead of a new session (the most expensive part of a read
on a busy host). If the session ends (a dropped connection, a read past its timeout, every read
of the script used), the next round opens another; the window stays where it began.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
from datetime import UTC, datetime

from bot.checks.logs import LogScan
from bot.config.apps_file import HostConfig
from bot.ports import CommandResult, ScriptCommand
from bot.steps.context import StepContext
from bot.steps.redeploy import CLOCK, parse_clock
from bot.steps.verify import logs_read, logs_scan, logs_timeout
from bot.workflow.errors import HostError

MAX_READS = 100  # reads per script: each adds ~250 bytes to the script's text


def reads_for(duration: float, interval: float) -> int:
    """The reads one script offers: every round of the window, the last one, and a spare."""
    rounds = math.ceil(duration / interval) if interval > 0 else MAX_READS
    return max(1, min(MAX_READS, rounds + 2))


class HostLogs:
    """The logs of one host, read round after round over one session."""

    def __init__(self, ctx: StepContext, host: HostConfig, reads: int) -> None:
        self.ctx, self.host, self.reads = ctx, host, reads
        self.window: tuple[datetime, int] | None = None  # (start in UTC, the host's UTC offset)
        self._asks: asyncio.Queue[asyncio.Future[LogScan]] = asyncio.Queue()
        self._reading: tuple[int, asyncio.Future[LogScan]] | None = None  # (command, ask)
        self._session: asyncio.Task[None] | None = None
        self._again = False  # the session was just opened again after a dropped one

    async def read(self) -> LogScan:
        """The error lines written since the window's start (the first read starts it).

        A host that cannot be reached before its clock was read fails the step (HostError), as
        nothing has been monitored yet; later, one SSH hiccup must not end 15 minutes of
        monitoring: it is this round's finding, and the next round tries again."""
        ask: asyncio.Future[LogScan] = asyncio.get_running_loop().create_future()
        await self._asks.put(ask)
        if self._session is None:
            self._session = asyncio.create_task(self._run())
        return await ask

    async def close(self) -> None:
        """Ends the session (it is waiting for the next round's go) and any read still asked."""
        task, self._session = self._session, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for ask in self._waiting():
            ask.cancel()

    async def _run(self) -> None:
        quiet = functools.partial(ScriptCommand, stream=False, check=False)
        clock = [quiet(CLOCK, timeout=30)] if self.window is None else []
        # Its text is written at its turn, from the clock: see `_decide`.
        read = quiet("# the logs since the window's start", timeout=logs_timeout(self.ctx.app),
                     deferred=True)  # fmt: skip
        try:
            results = await self.ctx.run_script(
                self.host, [*clock, *[read] * self.reads], decide=self._decide, tick=False
            )
        except Exception as exc:  # HostError, a lost lock (StepError), or a bug: told, not hung
            self._session = None
            self._ended(exc)
            return
        # The script ended by itself: a read past its timeout was killed, or all reads were used.
        self._session = None
        self._answer(results)
        if self.window is None:  # the clock went past its timeout: ours is the best guess
            self.window = (datetime.now(UTC), 0)
        self._ended(None)

    async def _decide(self, i: int, results: list[CommandResult | None]) -> bool | str:
        if self.window is None:
            if i == 0:
                return True  # the clock
            clock = results[0]
            parsed = parse_clock(clock.output) if clock is not None and clock.ok else None
            # Without the host's clock ours is the best guess; skew only blurs the log window.
            self.window = parsed or (datetime.now(UTC), 0)
        self._answer(results)
        while True:
            ask = await self._asks.get()  # the next round
            command = logs_read(self.ctx.app, self.host, *self.window)
            if isinstance(command, str):
                break
            ask.set_result(command)  # no logs command to run: said every round
        self._reading = (i, ask)
        await self.ctx.fence()  # the bot's go comes now, after waiting for the round
        return command

    def _answer(self, results: list[CommandResult | None]) -> None:
        if self._reading is None or self.window is None:
            return
        (i, ask), self._reading = self._reading, None
        result = results[i]
        if result is None:  # not run: the script ended before it
            result = CommandResult(self.host.name, "", None, "", 0.0)
        if not ask.done():
            ask.set_result(logs_scan(self.ctx.app, self.host, result, *self.window))
        self._again = False

    def _waiting(self) -> list[asyncio.Future[LogScan]]:
        """The rounds still waiting for a read, taken out of the queue."""
        asks = [self._reading[1]] if self._reading else []
        self._reading = None
        while not self._asks.empty():
            asks.append(self._asks.get_nowait())
        return [ask for ask in asks if not ask.done()]

    def _ended(self, exc: Exception | None) -> None:
        """The session ended (`exc`: why, if it failed) with rounds still waiting.

        A connection that dropped (idle between rounds, most likely) is opened again at once, as
        a new session per round would have been; twice in a row, the round gets `exc` raised
        (nothing read yet, or a lost lock) or as a logs problem."""
        asks = self._waiting()
        if not asks:
            return
        dropped = isinstance(exc, HostError) and self.window is not None
        self._again = again = not self._again and (exc is None or dropped)
        for ask in asks:
            if again:
                self._asks.put_nowait(ask)
            elif exc is None or dropped:
                ask.set_result(LogScan(host=self.host.name, error=str(exc or _ENDED)))
            else:
                ask.set_exception(exc)
        if again:
            self._session = asyncio.create_task(self._run())


_ENDED = "the logs session ended before the read"
