"""Lines typed at the terminal, read without blocking the event loop, and Ctrl-C as a value.

At a question, Ctrl-C wakes the reader (`Interrupted`); while a step runs it is counted, said
at once, and looked at by the step runner's pause point at the next command's fence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import TextIO


class Interrupted(Exception):
    """Ctrl-C while a question was asked."""


class InputClosed(Exception):
    """Standard input ended (EOF): nobody is there to answer."""


class Console:
    def __init__(self, stream_in: TextIO | None = None, out: TextIO | None = None) -> None:
        self.stream_in = stream_in if stream_in is not None else sys.stdin
        self.out = out if out is not None else sys.stdout
        self.interrupts = 0  # Ctrl-Cs pressed while a step ran, not yet handled
        self._asking = False
        self._wake: asyncio.Event | None = None
        self._lines: asyncio.Queue[str | None] | None = None
        self._buffer = b""
        self._fd: int | None = None
        self._installed = False

    # ---- setup --------------------------------------------------------------------------

    def install(self) -> None:
        """Take SIGINT and standard input over for this event loop."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._lines = asyncio.Queue()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
            self._installed = True
        try:
            fd = self.stream_in.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None
        if fd is not None:
            try:
                loop.add_reader(fd, self._readable)
                self._fd = fd
            except (OSError, ValueError, PermissionError, NotImplementedError):
                self._fd = None  # a regular file: read it line by line below

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        if self._installed:
            loop.remove_signal_handler(signal.SIGINT)
            self._installed = False
        if self._fd is not None:
            loop.remove_reader(self._fd)
            self._fd = None

    def _readable(self) -> None:
        assert self._lines is not None and self._fd is not None
        try:
            chunk = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None
            self._lines.put_nowait(None)
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self._lines.put_nowait(line.decode(errors="replace"))

    def _on_sigint(self) -> None:
        if self._asking:
            assert self._wake is not None
            self._wake.set()
            return
        self.interrupts += 1
        if self.interrupts == 1:
            self.say(
                "\n⏸  Ctrl-C: the running command finishes first, then you are asked whether "
                "to abort. Ctrl-C again stops there and leaves the incident paused."
            )
        else:
            self.say("\n⏸  Ctrl-C again: stopping after the running command; nothing is aborted.")

    # ---- talking ------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def read_line(self, prompt: str) -> str:
        """One line (stripped). Raises `Interrupted` on Ctrl-C, `InputClosed` at end of input."""
        if self.interrupts:  # Ctrl-C just before the question was out
            self.interrupts = 0
            raise Interrupted
        self.out.write(prompt)
        self.out.flush()
        if self._lines is None or self._wake is None:
            return self._read_plain()
        if self._fd is None and self._lines.empty():
            return self._read_plain()
        self._asking = True
        self._wake.clear()
        try:
            get = asyncio.ensure_future(self._lines.get())
            woke = asyncio.ensure_future(self._wake.wait())
            done, _ = await asyncio.wait({get, woke}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                woke.cancel()
                self.say("^C")
                raise Interrupted
            woke.cancel()
            line = get.result()
        finally:
            self._asking = False
        if line is None:
            raise InputClosed
        return line.strip()

    def _read_plain(self) -> str:
        line = self.stream_in.readline()
        if not line:
            raise InputClosed
        return line.strip()

    async def confirm(self, question: str) -> bool:
        """[y/N]: only a typed yes is yes; Enter, anything else or end of input is no."""
        try:
            answer = await self.read_line(f"{question} [y/N] ")
        except InputClosed:
            return False
        return answer.lower() in {"y", "yes"}
