"""Run the hosts' commands on this machine: for the demo and for a single-box install.

Each host is a directory (its `workdir`); commands already `cd` there, so only the shell differs
from SSH.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence

from bot.config.apps_file import AppConfig
from bot.ports import CommandResult, Decide, HostRunner, LineSink, ScriptCommand
from bot.workflow.errors import HostError
from runners import script
from runners.stream import collect


class LocalRunner:
    """`bot.ports.HostRunner` with a local shell."""

    def __init__(self, app: AppConfig, env: dict[str, str] | None = None) -> None:
        self.app = app
        # The app's commands must not see the bot's own secrets.
        self.env = {k: v for k, v in os.environ.items() if not _private(k)} | (env or {})

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

        async def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the shell and everything it started
            await proc.wait()

        status, lines = await collect(
            host, proc.stdout, proc.wait, kill, timeout=timeout, on_line=on_line
        )
        return CommandResult(host, command, status, "\n".join(lines), time.monotonic() - started)

    async def run_script(
        self,
        host: str,
        commands: Sequence[ScriptCommand],
        *,
        timeout: float | None = None,
        decide: Decide | None = None,
        on_line: LineSink | None = None,
    ) -> list[CommandResult | None]:
        self.app.host(host)
        tag = script.new_tag()
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                script.build(commands, tag),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.PIPE,
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            raise HostError(f"cannot start a shell: {exc}", host=host) from exc
        assert proc.stdout is not None and proc.stdin is not None
        stdin = proc.stdin

        async def write(text: str) -> None:
            stdin.write(text.encode())
            await stdin.drain()

        async def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

        try:
            return await script.drive(
                host, commands, tag, proc.stdout, write, proc.wait, kill,
                decide=decide, on_line=on_line, default_timeout=timeout,
            )  # fmt: skip
        finally:
            stdin.close()

    async def close(self) -> None:
        return None


def _private(name: str) -> bool:
    return name.startswith(("SLACK_", "REWIND_")) or name == "REDIS_URL"


def runner_for(app: AppConfig) -> HostRunner:
    """The runner the app's `ssh.transport` asks for."""
    if app.ssh.transport == "local":
        return LocalRunner(app)
    from runners.ssh import SshRunner

    return SshRunner(app)
