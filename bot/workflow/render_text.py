"""`bot.workflow.messages` for people reading plain text (the terminal) or Markdown (reports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from rich.cells import cell_len

from bot.workflow.messages import (
    Block,
    Bullets,
    ChannelRef,
    Code,
    CodeBlock,
    Emphasis,
    Inline,
    Link,
    Mark,
    Mention,
    Message,
    Paragraph,
    Status,
)

Names = Callable[[str], str]  # user or channel id -> a name people know

MARKS = {Status.OK: "✅", Status.WARN: "⚠️", Status.FAIL: "❌", Status.WAIT: "⏳"}


def _inline(part: Inline, names: Names, markdown: bool) -> str:
    match part:
        case str():
            return part
        case Mention(user_id=uid):
            return f"@{names(uid)}"
        case ChannelRef(channel_id=cid):
            return f"#{names(cid)}"
        case Emphasis(text=text):
            return f"**{text}**" if markdown else text
        case Code(text=text):
            return f"`{text}`" if markdown else text
        case Link(url=url, label=label):
            return f"[{label}]({url})" if markdown else f"{label} ({url})"
        case Mark(status=status):
            return MARKS[status]


def _paragraph(p: Paragraph, names: Names, markdown: bool) -> str:
    return "".join(_inline(part, names, markdown) for part in p.parts)


def _block(block: Block, names: Names, markdown: bool) -> str:
    match block:
        case Paragraph():
            return _paragraph(block, names, markdown)
        case Bullets(items=items):
            bullet = "- " if markdown else "• "
            return "\n".join(bullet + _paragraph(i, names, markdown) for i in items)
        case CodeBlock(text=text):
            return (
                f"```\n{text}\n```" if markdown else "\n".join(f"  {ln}" for ln in text.split("\n"))
            )


def plain(msg: Message, names: Names = str) -> str:
    """For the terminal: names, not ids; no markup."""
    return "\n".join(_block(b, names, markdown=False) for b in msg.blocks)


def markdown(msg: Message, names: Names = str) -> str:
    """For the Markdown report."""
    return "\n\n".join(_block(b, names, markdown=True) for b in msg.blocks)


# ---- wrapping: off a terminal nothing soft-wraps a line, and a cut line loses what matters ----

WIDTH = 80
COMMAND = "$ "  # a line that is a command to copy: never broken, whatever its width


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """`line` as lines of at most `width` terminal columns (emoji count two), broken between
    words; continuation lines are indented under the text (after `↳ `, a bullet or a mark).
    Nothing is cut: a word too long for any line (a path, a URL) stays whole, on the line it
    starts, so that it can be copied."""
    line = line.rstrip()
    if cell_len(line) <= width or line.lstrip().startswith(COMMAND):
        return [line]
    pad = " " * _hang(line, width)
    out: list[str] = []
    stripped = line.lstrip(" ")
    current = line[: len(line) - len(stripped)]
    for word in stripped.split(" "):
        candidate = f"{current} {word}" if current.strip() else current + word
        fits_alone = cell_len(pad + word) <= width
        if current.strip() and cell_len(candidate) > width and fits_alone:
            out.append(current.rstrip())
            current = pad + word
        else:
            current = candidate
    out.append(current.rstrip())
    return out


def _hang(line: str, width: int) -> int:
    """Columns of indent for the lines after the first: under the first word of the text."""
    stripped = line.lstrip(" ")
    lead = len(line) - len(stripped)
    first = stripped.split(" ", 1)[0]
    marker = first in {"↳", "•", "-"} or (cell_len(first) <= 2 and not first.isalnum())
    indent = lead + (cell_len(first) + 1 if marker else 2)
    return indent if indent < width // 2 else 4


def wrapped(text: str, width: int = WIDTH) -> str:
    """Every line of `text` wrapped to `width` (see `wrap`)."""
    return "\n".join(part for line in text.splitlines() or [""] for part in wrap(line, width))


class WrappedOut:
    """A stream that wraps each whole line to `width` (a pipe, CI): prompts and other partial
    lines pass through at `flush`, as they are."""

    def __init__(self, inner: TextIO, width: int = WIDTH) -> None:
        self.inner, self.width = inner, width
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self.inner.write(wrapped(line, self.width) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.inner.write(self._pending)
            self._pending = ""
        self.inner.flush()

    def isatty(self) -> bool:
        return False
