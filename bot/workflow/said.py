"""What an incident's stored words say, as messages: who ended it, who answered, who chose.

The incident keeps words and user ids apart (`outcome` and `ended_by`, an answer's `choice` and
`by`, a step's `summary` and `by`) so that no front's markup is stored; these put them together.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.workflow.facts import AnswerFact
from bot.workflow.messages import ChannelRef, Inline, Mention, Message, joined, message
from bot.workflow.model import Incident, Status, StepId, StepRecord


def answer(fact: AnswerFact) -> tuple[Inline, ...]:
    """`approve by @carol`."""
    return (fact.choice, " by ", Mention(fact.by)) if fact.by else (fact.choice,)


def outcome(incident: Incident) -> Message:
    """`Aborted by @dave. Rolled back: …`, or the outcome's words as they are."""
    return message(*outcome_parts(incident))


def outcome_parts(incident: Incident) -> tuple[Inline, ...]:
    # In a group's one thread, each app's outcome says which app it is.
    app: tuple[Inline, ...] = (f"`{incident.app}`: ",) if incident.group is not None else ()
    if not incident.ended_by:
        return (*app, incident.outcome)
    verb = "Cancelled" if incident.status is Status.CANCELLED else "Aborted"
    rest = f" {incident.outcome}" if incident.outcome else ""
    return (*app, f"{verb} by ", Mention(incident.ended_by), f".{rest}")


def summary(incident: Incident, rec: StepRecord) -> tuple[Inline, ...]:
    """A step's summary, with the people and channels it names: `Roll back (revert), chosen by
    @x`; the prerequisites' `Stakeholders told: #a, #b`."""
    if rec.by:
        return (rec.summary, ", chosen by ", Mention(rec.by))
    if rec.id is StepId.PREREQUISITES and rec.summary:
        return _prerequisites(incident, rec.summary)
    return (rec.summary,)


def channels(ids: list[str]) -> tuple[Inline, ...]:
    return joined([ChannelRef(c) for c in ids])


def _prerequisites(incident: Incident, summary: str) -> tuple[Inline, ...]:
    facts = incident.facts.prerequisites
    told: tuple[Inline, ...] = ()
    if facts.notified_start or not facts.notices_held:
        named = channels(facts.notified_start) or ("no stakeholder channels configured",)
        told = (" Stakeholders told: ", *named, ".")
    if facts.notices_held:
        told += (
            " Stakeholders NOT told yet (Slack unreachable): ",
            *channels(facts.notices_held),
            "; the notice is kept and posted when Slack answers.",
        )
    issue, _, policy = summary.partition(" Policy: ")
    return (issue, *told, f" Policy: {policy}" if policy else "")


_ANSWER_WORDS = {
    "roll back": ("✅", "Roll back chosen by"),
    "fix forward": ("➡️", "Fix forward chosen by"),
    "approve": ("✅", "Approved by"),
    "restore": ("✅", "Restore from backup approved by"),
    "retry": ("🔁", "Retry chosen by"),
    "abort": ("🛑", "Aborted by"),
}


def answered(fact: AnswerFact, at: datetime | None = None) -> Message:
    """What replaces a gate's buttons: `✅ Approved by @carol at 03:12 UTC`."""
    clock = f" at {at.astimezone(UTC):%H:%M UTC}" if at else ""
    known = _ANSWER_WORDS.get(fact.choice.strip().lower())
    if known is None or not fact.by:
        return message(*answer(fact), clock)
    return message(f"{known[0]} {known[1]} ", Mention(fact.by), clock)
