"""Stakeholder notices that could not be posted (Slack unreachable), kept in the store.

The terminal front holds them; the next `serve` or `worker` that reaches Slack posts each one,
marked late, with what happened to the incident since.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.fronts.slack import text as t
from bot.ports import HeldNotice, HeldNotices, Store

log = logging.getLogger(__name__)


def late_text(notice: HeldNotice, since: str) -> str:
    when = datetime.fromisoformat(notice.at).astimezone(UTC).strftime("%H:%M UTC")
    return f"(Held since {when}: Slack could not be reached.) {notice.text}\n{since}"


async def deliver(held: HeldNotices, store: Store, client: object) -> int:
    """Post every held notice (each taken atomically, so two processes never post one twice);
    one Slack refuses goes back to be tried later. Returns how many were posted."""
    from slack_sdk.web.async_client import AsyncWebClient

    assert isinstance(client, AsyncWebClient)
    posted = 0
    for _ in range(await held.count()):
        notice = await held.take()
        if notice is None:
            break
        incident = await store.load(notice.incident)
        since = (
            f"Since then: {t.incident_line(incident)}"
            + (f" — {t.outcome_words(incident)}" if incident.outcome else "")
            if incident is not None
            else "The incident is no longer in Redis."
        )
        try:
            await client.chat_postMessage(channel=notice.channel, text=late_text(notice, since))
        except Exception as exc:
            log.warning("held notice for %s in %s still not posted: %s",
                        notice.incident, notice.channel, exc)  # fmt: skip
            await held.put_back(notice)
            continue
        posted += 1
    if posted:
        log.info("posted %d stakeholder notice(s) held while Slack was unreachable", posted)
    return posted
