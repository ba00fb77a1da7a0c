"""Reading a command's output line by line, under a deadline: shared by every runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable

from bot.ports import LineSink


async def collect(
    host: str,
    lines: AsyncIterable[str | bytes],
    wait: Callable[[], Awaitable[int | None]],
    kill: Callable[[], Awaitable[None]],
    *,
    timeout: float | None,
    on_line: LineSink | None,
) -> tuple[int | None, list[str]]:
    """Every line (streamed to `on_line` as it comes) and the exit status; None if timed out."""
    out: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            async for raw in lines:
                text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
                out.append(text.rstrip("\n"))
                if on_line is not None:
                    await on_line(host, out[-1])
            return await wait(), out
    except TimeoutError:
        await kill()
        out.append(f"[rewind] killed after {timeout:g}s: the command took too long")
        return None, out
