"""Slack's words for the incident: `bot.views.incident` rendered in mrkdwn, within Slack's limits.

What the thread says is decided front-neutrally in `bot.views.incident`; this module turns it
into mrkdwn (`mrkdwn`) and keeps Slack's own limits (sections, headers, buttons) and its pings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from bot.fronts.command import HELP
from bot.fronts.slack import mrkdwn
from bot.views import incident as views
from bot.views.incident import first_line, fmt_time, truncate, truncate_tail
from bot.workflow.messages import Paragraph
from bot.workflow.model import Gate, Incident

__all__ = ["first_line", "fmt_time", "truncate", "truncate_tail"]

SECTION_MAX = 3_000
HEADER_MAX = 150
BUTTON_MAX = views.BUTTON_MAX


def md(line: Paragraph | None) -> str:
    """One line of `bot.views.incident` in mrkdwn ("" for none)."""
    return mrkdwn.paragraph(line) if line is not None else ""


def mds(lines: Sequence[Paragraph]) -> list[str]:
    return [md(line) for line in lines]


def escape(text: str) -> str:
    """Slack's three control characters, escaped (text stays literal in mrkdwn)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_safe(text: str) -> str:
    """Text that cannot close a ``` code block early."""
    return text.replace("```", "`\u200b``")


def code_block(text: str, limit: int, *, keep: Literal["head", "tail"] = "head") -> str:
    """A ``` block of `text`, whole block at most `limit` characters."""
    body = code_safe(text.strip("\n")) or " "
    room = max(limit - 8, 1)
    body = truncate(body, room) if keep == "head" else truncate_tail(body, room)
    return f"```\n{body}\n```"


def mention(entity: str) -> str:
    """`U123` -> `<@U123>`, `S123` -> `<!subteam^S123>`; already formatted strings as is."""
    entity = entity.strip()
    if not entity or entity.startswith("<"):
        return entity
    if entity.startswith("S"):
        return f"<!subteam^{entity}>"
    return f"<@{entity}>"


def pack(lines: Sequence[str], limit: int = SECTION_MAX) -> list[str]:
    """Lines joined into chunks of at most `limit` characters (a too-long line is cut)."""
    chunks: list[str] = []
    current = ""
    for raw in lines:
        line = truncate(raw, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit and current:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def header_text(incident: Incident) -> str:
    return truncate(views.header_text(incident), HEADER_MAX)


def parent_fallback(incident: Incident) -> str:
    """The notification text of the parent message: the essentials in one line."""
    text = (
        f"{views.STATUS_MARK.get(incident.status, '')} Rollback of {incident.app} "
        f"({incident.environment}) to {incident.target or 'the previous version'} "
        f"requested by <@{incident.requested_by}> — {views.state_words(incident)}. "
        f"Incident {incident.id}."
    )
    if incident.outcome and not incident.status.open:
        text += " " + first_line(outcome_words(incident))
    return truncate(text, 2_000)


def outcome_words(incident: Incident) -> str:
    """The outcome in mrkdwn (who ended it is a mention), or the state's words."""
    return md(Paragraph(views.outcome_parts(incident)))


def incident_line(incident: Incident) -> str:
    return truncate(md(views.incident_line(incident)), 1_000)


def gate_fallback(incident: Incident, gate: Gate, ping: str = "") -> str:
    view = views.gate_view(incident, gate)
    labels = " / ".join(b.label for b in view.buttons)
    return truncate(f"{ping + ' ' if ping else ''}{md(view.question)} [{labels}]", 2_000)


def notice_text(
    incident: Incident,
    phase: Literal["start", "end"],
    mentions: Sequence[str] = (),
    members: Sequence[Incident] = (),
) -> str:
    ping = " ".join(mention(m) for m in mentions if m)
    body = md(views.notice(incident, phase, members))
    return f"{ping} {body}" if ping else body


def help_text() -> str:
    return mrkdwn.render(HELP)  # one help text, for `/rollback help` and the App Home


_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def plain_fallback(text: str) -> str:
    """A notification's plain `text` (shown by phones and screen readers) from its mrkdwn:
    `<url|label>` -> `label (url)`, `*bold*` -> `bold`; mentions stay (Slack resolves them)."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    return _BOLD.sub(r"\1", text)
