"""`bot.workflow.messages` for people reading plain text (the terminal) or Markdown (reports)."""

from __future__ import annotations

from collections.abc import Callable

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
