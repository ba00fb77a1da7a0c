"""Several commands as one remote shell script: one SSH session instead of one per command.

The script still streams each command's output as it comes and reports each command's exit
status and output on its own. Before each command it prints a `ready` marker and waits for one
line on its stdin: `go` runs the command, `skip` leaves it out, anything else (or end of input)
stops the script. So the bot still decides, command by command, whether to go on (its fencing
check, or a choice made from an earlier command's output) at the cost of one round trip on the
open session, not a new session. A command that exits non-zero stops the script unless it is
marked `check=False`. A `deferred` command's text comes after its `go`, on one line of its own
(backslashes, newlines and carriage returns escaped as `printf %b` reads them), for a command
that can only be written once an earlier one has answered.

Markers start with the ASCII record separator and a random tag made for this run, so no output
of a command can pass for one.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.ports import CommandResult, Decide, LineSink, ScriptCommand

MARK = "\x1e"


def build(commands: Sequence[ScriptCommand], tag: str) -> str:
    """The POSIX shell script that runs `commands` one by one under the stdin handshake."""
    parts = ["rw_s=0"]
    for i, cmd in enumerate(commands):
        stop = '[ "$rw_s" -eq 0 ] || exit 0\n' if cmd.check else ""
        # The command sits on lines of its own: a trailing comment cannot eat the `)`.
        body = _DEFERRED if cmd.deferred else f"(\n{cmd.command}\n)"
        parts.append(
            f"printf '\\036%s ready {i}\\n' {tag}\n"
            "IFS= read -r rw_go || exit 0\n"
            'if [ "$rw_go" = go ]; then\n'
            f"{body} </dev/null 2>&1\n"
            "rw_s=$?\n"
            f"printf '\\n\\036%s end {i} %s\\n' {tag} \"$rw_s\"\n"
            f"{stop}"
            'elif [ "$rw_go" != skip ]; then exit 0; fi'
        )
    parts.append(f"printf '\\036%s done\\n' {tag}")
    return "\n".join(parts) + "\n"


# Its text is the line after `go`, run as if it stood there (in a subshell, like the others).
_DEFERRED = 'IFS= read -r rw_c || exit 0\n(\neval "$(printf \'%b\' "$rw_c")"\n)'


def deferred_line(command: str) -> str:
    """`command` as the one line a deferred command's script reads (see the module's doc)."""
    return command.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def new_tag() -> str:
    return "rewind-" + secrets.token_hex(8)


@dataclass
class _Running:
    index: int
    started: float
    lines: list[str]
    command: str


async def drive(
    host: str,
    commands: Sequence[ScriptCommand],
    tag: str,
    lines: AsyncIterable[str | bytes],
    write: Callable[[str], Awaitable[None]],
    wait: Callable[[], Awaitable[int | None]],
    kill: Callable[[], Awaitable[None]],
    *,
    decide: Decide | None,
    on_line: LineSink | None,
    default_timeout: float | None,
) -> list[CommandResult | None]:
    """Talk to a running script made by `build(commands, tag)`; one result per command
    (None: not run). A command over its timeout is killed with the script: its result has
    exit status None and the commands after it are not run."""
    results: list[CommandResult | None] = [None] * len(commands)
    marker = re.compile(re.escape(MARK + tag) + r" (ready|end|done)(?: (\d+))?(?: (-?\d+))?\s*$")
    running: _Running | None = None
    loop = asyncio.get_running_loop()
    # The line before the current one: the end marker starts with a newline of its own, so the
    # last line before it is that newline's artifact (or a last line that had none).
    held: str | None = None

    def timeout_of(i: int) -> float | None:
        return commands[i].timeout if commands[i].timeout is not None else default_timeout

    async def emit(text: str) -> None:
        assert running is not None
        running.lines.append(text)
        if on_line is not None and commands[running.index].stream:
            await on_line(host, text)

    async def close_command(status: int | None, note: str = "") -> None:
        nonlocal running, held
        assert running is not None
        if held:
            await emit(held)
        held = None
        if note:
            await emit(note)
        output = "\n".join(running.lines)
        took = time.monotonic() - running.started
        results[running.index] = CommandResult(host, running.command, status, output, took)
        running = None

    try:
        async with asyncio.timeout(None) as deadline:
            async for raw in lines:
                text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
                text = text.rstrip("\n").rstrip("\r")
                match = marker.match(text) if text.startswith(MARK) else None
                if match is None:
                    if running is not None:
                        if held is not None:
                            await emit(held)
                        held = text
                    continue
                what, number, status = match.groups()
                if what == "ready":
                    i = int(number)
                    go = True if decide is None else await decide(i, list(results))
                    if go is False:
                        await write("skip\n")
                        continue
                    command = _text(commands[i], go)
                    running = _Running(i, time.monotonic(), [], command)
                    limit = timeout_of(i)
                    deadline.reschedule(loop.time() + limit if limit is not None else None)
                    deferred = commands[i].deferred
                    await write(f"go\n{deferred_line(command)}\n" if deferred else "go\n")
                elif what == "end" and running is not None:
                    await close_command(int(status))
                    deadline.reschedule(None)
                elif what == "done":
                    break
    except TimeoutError:
        await kill()
        if running is not None:
            limit = timeout_of(running.index)
            await close_command(
                None, f"[rewind] killed after {limit:g}s: the command took too long"
            )
        return results
    except BaseException:
        await kill()
        raise
    await wait()
    if running is not None:  # the stream ended inside a command: it was killed or cut
        await close_command(None)
    return results


def _text(command: ScriptCommand, go: bool | str) -> str:
    """What runs for a `go` (True: the command's own text; a text: that, if it is deferred)."""
    if not isinstance(go, str):
        return command.command
    if not command.deferred:
        raise ValueError(f"a text was given for a command not deferred: {command.command!r}")
    return go
