"""Run the hosts' commands on this machine: for the demo and for a single-box install.

Each host is a directory (its `workdir`); commands already `cd` there, so only the shell differs
from SSH.
"""

from __future__ import annotations

import asyncio
import os
import time

from bot.apps import AppConfig
from bot.errors import HostError
from bot.ports import CommandResult, HostRunner, LineSink


class LocalRunner:
    """`bot.ports.HostRunner` with a local shell."""

    def __init__(self, app: AppConfig, env: dict[str, str] | None = None) -> None:
        self.app = app
        self.env = {**os.environ, **(env or {})}

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        self.app.host(host)  # unknown host -> KeyError, a programming error
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_shell(
                command,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            raise HostError(f"cannot start a shell: {exc}", host=host) from exc
        assert proc.stdout is not None
        lines: list[str] = []
        status: int | None = None
        try:
            async with asyncio.timeout(timeout):
                async for raw in proc.stdout:
                    text = raw.decode(errors="replace").rstrip("\n")
                    lines.append(text)
                    if on_line is not None:
                        await on_line(host, text)
                status = await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            lines.append(f"[rewind] killed after {timeout:g}s: the command took too long")
        return CommandResult(host, command, status, "\n".join(lines), time.monotonic() - started)

    async def close(self) -> None:
        return None


def runner_for(app: AppConfig) -> HostRunner:
    """The runner the app's `ssh.transport` asks for."""
    if app.ssh.transport == "local":
        return LocalRunner(app)
    from runners.ssh import SshRunner

    return SshRunner(app)
