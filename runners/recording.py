"""A `HostRunner` that keeps every command line that ran, per host: what a plan read, or what a
test checks was sent."""

from __future__ import annotations

from collections.abc import Sequence

from bot.ports import CommandResult, Decide, HostRunner, LineSink, ScriptCommand


class RecordingRunner:
    def __init__(self, inner: HostRunner) -> None:
        self.inner = inner
        self.ran: list[tuple[str, str]] = []  # (host, command), in the order they ran

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        self.ran.append((host, command))
        return await self.inner.run(host, command, timeout=timeout, on_line=on_line)

    async def run_script(
        self,
        host: str,
        commands: Sequence[ScriptCommand],
        *,
        timeout: float | None = None,
        decide: Decide | None = None,
        on_line: LineSink | None = None,
    ) -> list[CommandResult | None]:
        results = await self.inner.run_script(
            host, commands, timeout=timeout, decide=decide, on_line=on_line
        )
        self.ran.extend((host, r.command) for r in results if r is not None)  # those that ran
        return results

    async def close(self) -> None:
        await self.inner.close()

    def commands(self, host: str) -> list[str]:
        return [cmd for h, cmd in self.ran if h == host]
