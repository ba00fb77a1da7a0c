"""Pytest plugin: Rewind's own processes as real subprocesses, and what they need around them.

`python -m bot serve` (`Serve`) and `python -m bot worker` (`Workers`), free ports, waiting for an
HTTP endpoint, and stopping processes so that none outlives its test. Used by the process tests
and by the benchmarks (bench/lab.py).

Fixtures:
    serve_factory    (function) serve_factory(env, *args) -> Serve, not started yet
    workers_factory  (function) workers_factory(bot) -> Workers, none spawned yet
Whatever they made is stopped at the end of the test, even when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

if TYPE_CHECKING:
    from tests.harness import Bot

Popen = subprocess.Popen[bytes]


def free_port() -> int:
    """A port nothing listens on now, as the kernel hands them out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def restartable_port() -> int:
    """A free port below the ephemeral range, for a server that a test stops and starts again.

    A stopped server must not sit on an ephemeral port: a client reconnecting in a loop may be
    given that very port as its own source port and connect to itself (TCP simultaneous open),
    reading its own request back as an answer.
    """
    low = 20000
    with contextlib.suppress(OSError, ValueError):
        low = min(int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]),
                  32768) - 8000  # fmt: skip
    for _ in range(200):
        port = random.randrange(max(low, 10000), max(low, 10000) + 8000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _nothing() -> None:
    return None


async def wait_http(url: str, timeout: float = 60, check: Callable[[], None] = _nothing) -> None:
    """Until `url` answers 200. `check` runs before each try and raises if what should answer
    has died, so that a crash shows its log at once rather than as a timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            check()
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            if loop.time() > deadline:
                raise TimeoutError(f"{url} never answered 200 within {timeout:.0f} s")
            await asyncio.sleep(0.1)


async def run_bot(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> tuple[int, str]:
    """`python -m bot ARGS` until it exits: its exit status and output (stdout and stderr).
    One that outlives `timeout` is killed, and the test fails with its last output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        raise AssertionError(f"`{' '.join(args)}` did not stop: {out.decode()[-2000:]}") from None
    return int(proc.returncode or 0), out.decode(errors="replace")


def end(procs: Iterable[Popen], timeout: float = 15) -> None:
    """SIGTERM to each process still running, then wait for them all; SIGKILL any that outlives
    `timeout`. Never leaves a process behind, even when a test fails."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def sigterm(proc: Popen, timeout: float = 120) -> int:
    """SIGTERM, as a process manager does on a deploy; the exit status it ended with."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def sigkill(proc: Popen) -> None:
    """A crash: SIGKILL, and the process reaped."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


class Serve:
    """`python -m bot serve <args>` as a real process on one port, restartable. Each run logs
    to `<logs>/serve-<run>.log` (run 1, 2, ...)."""

    def __init__(self, env: dict[str, str], logs: Path, *args: str) -> None:
        self.port = restartable_port()
        self.env = {**os.environ, **env, "PORT": str(self.port)}
        self.logs = logs
        self.args = args
        self.proc: Popen | None = None
        self.runs = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.runs += 1
        log = self.logs / f"serve-{self.runs}.log"
        with log.open("wb") as out:
            argv = [sys.executable, "-m", "bot", "serve", *self.args]
            self.proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        await wait_http(f"{self.url}/healthz", check=self._running)

    def _running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"serve exited {self.proc.returncode}:\n{self.log_text()[-3000:]}")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (a deploy); its exit status."""
        assert self.proc is not None, "serve was never started"
        return sigterm(self.proc, timeout)

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        assert self.proc is not None, "serve was never started"
        sigkill(self.proc)

    def close(self) -> int | None:
        """Stopped for good, however it is; its exit status (None: never started)."""
        if self.proc is None:
            return None
        end([self.proc])
        return self.proc.returncode

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("serve-*")))


class Workers:
    """`python -m bot worker` processes with `bot`'s settings, by name; each logs to
    `<logs>/<name>.log`."""

    def __init__(self, bot: Bot, logs: Path) -> None:
        self.bot, self.logs = bot, logs
        self.procs: dict[str, Popen] = {}

    def spawn(self, name: str) -> Popen:
        # Each worker on this machine needs its own /metrics port: 0 picks a free one.
        env = {**os.environ, **self.bot.env, "REWIND_WORKER_ID": name, "METRICS_PORT": "0"}
        with (self.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "worker"], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)  # fmt: skip
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL (a crash)."""
        sigkill(self.procs[name])

    def stop(self, name: str, timeout: float = 120) -> int:
        """SIGTERM (a deploy); its exit status."""
        return sigterm(self.procs[name], timeout)

    def stop_all(self) -> None:
        end(self.procs.values(), 10)


# The teardowns wait for the processes in a thread: the Slack fake answers on this event loop,
# and a worker finishing an incident would otherwise hang on it until it is killed (10 s).
@pytest.fixture
async def serve_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Serve]]:
    made: list[Serve] = []

    def make(env: dict[str, str], *args: str) -> Serve:
        made.append(Serve(env, tmp_path, *args))
        return made[-1]

    yield make
    for serve in made:
        await asyncio.to_thread(serve.close)


@pytest.fixture
async def workers_factory(tmp_path: Path) -> AsyncIterator[Callable[[Bot], Workers]]:
    made: list[Workers] = []

    def make(bot: Bot) -> Workers:
        made.append(Workers(bot, tmp_path))
        return made[-1]

    yield make
    for workers in made:
        await asyncio.to_thread(workers.stop_all)
