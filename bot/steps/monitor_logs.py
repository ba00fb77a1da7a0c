"""Monitoring's kept sessions: one SSH session per host for the whole window, not one per round.

They are how the `logs` kind reads during monitoring (`bot.checks.logs.KeptLogsCheck`, given
these as its site's `kept`): the monitor builds its checks through the registry, and the logs
kind reads over them. A session's script first reads the host's clock (the window starts there,
as the host tells time), then runs one read per round: each read is a deferred command of the
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
from collections.abc import Callable
from datetime import UTC, datetime

from bot.checks.kinds import NotRead
from bot.config.apps_file import HostConfig
from bot.ports import CommandResult, ScriptCommand
from bot.steps.context import StepContext
from bot.steps.redeploy import CLOCK, parse_clock
from bot.workflow.errors import HostError

MAX_READS = 100  # reads per script: each adds ~250 bytes to the script's text

Write = Callable[[datetime, int], str]  # (the window's start in UTC, the host's offset) -> command
_Ask = tuple["asyncio.Future[CommandResult]", Write]  # a round's read: its answer, its command


def reads_for(duration: float, interval: float) -> int:
    """The reads one script offers: every round of the window, the last one, and a spare."""
    rounds = math.ceil(duration / interval) if interval > 0 else MAX_READS
    return max(1, min(MAX_READS, rounds + 2))


class HostSession:
    """One host's reads, round after round, over one session."""

    def __init__(self, ctx: StepContext, host: HostConfig, reads: int, timeout: float) -> None:
        self.ctx, self.host, self.reads, self.timeout = ctx, host, reads, timeout
        self.window: tuple[datetime, int] | None = None  # (start in UTC, the host's UTC offset)
        self._asks: asyncio.Queue[_Ask] = asyncio.Queue()
        self._reading: tuple[int, _Ask] | None = None  # (the command's index, its round)
        self._session: asyncio.Task[None] | None = None
        self._again = False  # the session was just opened again after a dropped one

    async def read(self, write: Write) -> CommandResult:
        """`write(*window)` run over the session (the first read starts the window).

        A host that cannot be reached before its clock was read fails the step (HostError), as
        nothing has been monitored yet; later, one SSH hiccup must not end 15 minutes of
        monitoring: this round gets `NotRead`, and the next round tries again."""
        ask: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        await self._asks.put((ask, write))
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
        for ask, _ in self._waiting():
            ask.cancel()

    async def _run(self) -> None:
        quiet = functools.partial(ScriptCommand, stream=False, check=False)
        clock = [quiet(CLOCK, timeout=30)] if self.window is None else []
        # Its text is written at its turn, from the clock: see `_decide`.
        read = quiet("# the read since the window's start", timeout=self.timeout, deferred=True)
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
            self.window = self._since_checked(parsed or (datetime.now(UTC), 0))
        self._answer(results)
        while True:
            asked = await self._asks.get()  # the next round
            try:
                command = asked[1](*self.window)
                break
            except ValueError as exc:  # no command to run: said this round
                asked[0].set_exception(NotRead(str(exc)))
        self._reading = (i, asked)
        await self.ctx.fence()  # the bot's go comes now, after waiting for the round
        return command

    def _since_checked(self, clock: tuple[datetime, int]) -> tuple[datetime, int]:
        """The window's start: the host's restart when Redeploy checked the host as it came
        back and Verify reused that check (nobody has read its logs since then), else now."""
        if self.host.name not in self.ctx.facts.redeploy.verified:
            return clock
        try:
            restart = datetime.fromisoformat(self.ctx.facts.redeploy.restart_at[self.host.name])
            return (min(restart, clock[0]), clock[1])
        except (KeyError, ValueError, TypeError):  # unknown, or a time without its zone
            return clock

    def _answer(self, results: list[CommandResult | None]) -> None:
        if self._reading is None or self.window is None:
            return
        (i, (ask, _)), self._reading = self._reading, None
        result = results[i]
        if result is None:  # not run: the script ended before it
            result = CommandResult(self.host.name, "", None, "", 0.0)
        if not ask.done():
            ask.set_result(result)
        self._again = False

    def _waiting(self) -> list[_Ask]:
        """The rounds still waiting for a read, taken out of the queue."""
        asks = [self._reading[1]] if self._reading else []
        self._reading = None
        while not self._asks.empty():
            asks.append(self._asks.get_nowait())
        return [asked for asked in asks if not asked[0].done()]

    def _ended(self, exc: Exception | None) -> None:
        """The session ended (`exc`: why, if it failed) with rounds still waiting.

        A connection that dropped (idle between rounds, most likely) is opened again at once, as
        a new session per round would have been; twice in a row, the round gets `exc` raised
        (nothing read yet, or a lost lock) or `NotRead`."""
        asks = self._waiting()
        if not asks:
            return
        dropped = isinstance(exc, HostError) and self.window is not None
        self._again = again = not self._again and (exc is None or dropped)
        for asked in asks:
            if again:
                self._asks.put_nowait(asked)
            elif exc is None or dropped:
                asked[0].set_exception(NotRead(str(exc or _ENDED)))
            else:
                asked[0].set_exception(exc)
        if again:
            self._session = asyncio.create_task(self._run())


_ENDED = "the session ended before the read"


class KeptSessions:
    """The monitor's sessions, one per host, opened at a host's first read
    (`bot.checks.kinds.Kept`)."""

    def __init__(self, ctx: StepContext, reads: int) -> None:
        self.ctx, self.reads = ctx, reads
        self.hosts: dict[str, HostSession] = {}

    async def read(
        self, host: str, write: Write, timeout: float
    ) -> tuple[CommandResult, datetime, int]:
        session = self.hosts.get(host)
        if session is None:
            session = HostSession(self.ctx, self.ctx.app.host(host), self.reads, timeout)
            self.hosts[host] = session
        ran = await session.read(write)
        assert session.window is not None  # a read was answered: the window had begun
        return ran, *session.window

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.hosts.values()))
