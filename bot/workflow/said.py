"""What an incident's stored words say, as messages: who ended it, who answered, who chose; and
which app a message in a release group's one thread is about (`named`).

The incident keeps words and user ids apart (`outcome` and `ended_by`, an answer's `choice` and
`by`, a step's `summary` and `by`) so that no front's markup is stored; these put them together.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.workflow.facts import AnswerFact
from bot.workflow.messages import (
    ChannelRef,
    Code,
    Emphasis,
    Inline,
    Mention,
    Message,
    Paragraph,
    joined,
    message,
)
from bot.workflow.model import GateKind, Incident, Status, StepId, StepRecord

# The questions a group's lead asks for the whole group: its one decision and one approval.
GROUP_GATES = frozenset({GateKind.DECISION, GateKind.APPROVE_START})
# Characters: a first line that names its app this early (`❄️ `api` is now frozen`) needs no
# prefix, or the app would be said twice.
NAMES_ITSELF = 60


def named(incident: Incident, msg: Message) -> Message:
    """In a release group's one thread several apps speak: a message about one member starts
    with its app (`api` · …). A single app's messages, and those said of the whole group, are
    left as they are. Applied where a member's messages enter the thread (`bot.incidents.
    member_names`), so no step or message names its app itself."""
    if incident.group is None or msg.whole_group:
        return msg
    first = msg.blocks[0] if msg.blocks else None
    if isinstance(first, Paragraph):
        return Message((named_question(incident, first), *msg.blocks[1:]))
    return Message((Paragraph((_name(incident).rstrip(),)), *msg.blocks))


def named_question(
    incident: Incident, question: Paragraph, kind: GateKind | None = None
) -> Paragraph:
    """A member's question (or a message's first line), as `named` says; the group's own
    questions (`GROUP_GATES`) name no app."""
    if incident.group is None or kind in GROUP_GATES or _names_itself(incident, question):
        return question
    return Paragraph((_name(incident), *question.parts))


def _names_itself(incident: Incident, first: Paragraph) -> bool:
    """Whether `first` says which app it is about within its first `NAMES_ITSELF` characters."""
    app, seen = f"`{incident.app}`", 0
    for part in first.parts:
        if isinstance(part, Code) and part.text == incident.app:
            return True
        text = part if isinstance(part, str) else part.text if isinstance(part, Emphasis) else ""
        at = text.find(app)
        if at != -1 and seen + at < NAMES_ITSELF:
            return True
        seen += len(text) or 1
        if seen >= NAMES_ITSELF:
            return False
    return False


def named_file(incident: Incident, title: str, comment: str) -> str:
    """A file's comment in the thread, as `named` says (a member's file without a comment gets
    one: its title, named)."""
    if incident.group is None:
        return comment
    return _name(incident) + (comment or title)


def _name(incident: Incident) -> str:
    return f"`{incident.app}` · "


def answer(fact: AnswerFact) -> tuple[Inline, ...]:
    """`approve by @carol`."""
    return (fact.choice, " by ", Mention(fact.by)) if fact.by else (fact.choice,)


def outcome(incident: Incident, *, app: bool = True) -> Message:
    """`Aborted by @dave. Rolled back: …`, or the outcome's words as they are. `app=False`: in
    the thread, where `named` says which member it is."""
    return message(*outcome_parts(incident, app=app))


def outcome_parts(incident: Incident, *, app: bool = True) -> tuple[Inline, ...]:
    """A group member's outcome (in the parent, a notice, the report) says which app it is."""
    named_app: tuple[Inline, ...] = (
        (f"`{incident.app}`: ",) if app and incident.group is not None else ()
    )
    if not incident.ended_by:
        return (*named_app, incident.outcome)
    verb = "Cancelled" if incident.status is Status.CANCELLED else "Aborted"
    rest = f" {incident.outcome}" if incident.outcome else ""
    return (*named_app, f"{verb} by ", Mention(incident.ended_by), f".{rest}")


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
