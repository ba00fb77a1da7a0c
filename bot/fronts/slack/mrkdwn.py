"""`bot.workflow.messages` in Slack's mrkdwn: the only place that knows `<@U…>` and `*bold*`."""

from __future__ import annotations

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

EMOJI = {
    Status.OK: ":white_check_mark:",
    Status.WARN: ":warning:",
    Status.FAIL: ":x:",
    Status.WAIT: ":hourglass_flowing_sand:",
}


def escape(text: str) -> str:
    """Slack's three control characters, escaped (text stays literal)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(part: Inline) -> str:
    match part:
        case str():
            return escape(part)
        case Mention(user_id=uid):
            return f"<!subteam^{uid}>" if uid.startswith("S") else f"<@{uid}>"
        case ChannelRef(channel_id=cid):
            return f"<#{cid}>"
        case Emphasis(text=text):
            return f"*{escape(text)}*"
        case Code(text=text):
            return f"`{escape(text)}`"
        case Link(url=url, label=label):
            return f"<{url}|{escape(label)}>"
        case Mark(status=status):
            return EMOJI[status]


def paragraph(p: Paragraph) -> str:
    return "".join(_inline(part) for part in p.parts)


def _block(block: Block) -> str:
    match block:
        case Paragraph():
            return paragraph(block)
        case Bullets(items=items):
            return "\n".join("• " + paragraph(i) for i in items)
        case CodeBlock(text=text):
            return "```\n" + escape(text).replace("```", "`\u200b``") + "\n```"


def render(msg: Message) -> str:
    return "\n".join(_block(b) for b in msg.blocks)
