"""Stakeholder notices that could not be posted (Slack unreachable), kept in the store.

The terminal front holds them; the next `serve` or `worker` that reaches Slack posts each one,
marked late, with what happened to the incident since.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.fronts.port import Chat, ChatUnavailable
from bot.ports import HeldNotice, HeldNotices, Store
from bot.views import incident as views
from bot.workflow.messages import Message, Paragraph
from bot.workflow.model import Incident

log = logging.getLogger(__name__)


def late_text(notice: HeldNotice, since: str) -> str:
    when = datetime.fromisoformat(notice.at).astimezone(UTC).strftime("%H:%M UTC")
    return f"(Held since {when}: Slack could not be reached.) {notice.text}\n{since}"


def since(incident: Incident | None) -> Message:
    """What happened to the incident since its notice was kept."""
    if incident is None:
        return Message((Paragraph(("The incident is no longer in Redis.",)),))
    parts = ("Since then: ", *views.incident_line(incident).parts)
    if incident.outcome:
        parts += (" — ", *views.outcome_parts(incident))
    return Message((Paragraph(parts),))


async def deliver(held: HeldNotices, store: Store, chat: Chat) -> int:
    """Post every held notice (each taken atomically, so two processes never post one twice);
    one the chat refuses goes back to be tried later. Returns how many were posted."""
    posted = 0
    for _ in range(await held.count()):
        notice = await held.take()
        if notice is None:
            break
        said_since = chat.render(since(await store.load(notice.incident)))
        try:
            await chat.post(notice.channel, late_text(notice, said_since))
        except ChatUnavailable as exc:
            log.warning("held notice for %s in %s still not posted: %s",
                        notice.incident, notice.channel, exc)  # fmt: skip
            await held.put_back(notice)
            continue
        posted += 1
    if posted:
        log.info("posted %d stakeholder notice(s) held while Slack was unreachable", posted)
    return posted
