"""A command's `Reply` (`bot.fronts.dispatch`) in the terminal's words: names, no markup."""

from __future__ import annotations

from collections.abc import Callable

from bot.fronts.dispatch import (
    Cancelled,
    GroupOpenedFromPlan,
    GroupPlanMade,
    Listing,
    NoIncidents,
    Opened,
    OpenedFromPlan,
    PlanMade,
    Released,
    Reply,
    StatusOf,
    Unfrozen,
)
from bot.plan.group import summary as group_summary
from bot.views import incident as views
from bot.workflow.messages import Mention, Message, Paragraph, para, words
from bot.workflow.model import Incident

Show = Callable[[Message], str]


def reply_words(reply: Reply, show: Show) -> str:
    return show(reply_message(reply))


def reply_message(reply: Reply) -> Message:
    match reply:
        case Listing(incidents=incidents, empty=empty):
            if not incidents:
                return words(empty)
            return _lines([views.incident_line(i) for i in incidents])
        case StatusOf(incident=incident):
            return status_message(incident)
        case NoIncidents(app=app):
            return words(f"{app} has no incidents.")
        case Opened(incident=incident, version=version):
            to = f" → `{version}`" if version else ""
            return words(f"⏪ Incident `{incident.id}` opened for `{incident.app}`{to}.")
        case OpenedFromPlan(incident=incident, plan=plan):
            return words(
                f"⏪ Incident `{incident.id}` opened from plan `{plan.id}` for `{plan.app}` "
                f"→ `{plan.target}`."
            )
        case Cancelled(incident_id=incident_id):
            return words(
                f"Incident `{incident_id}` cancelled. The thread says what was rolled back."
            )
        case Unfrozen(app=app, by=by, was_frozen=was_frozen):
            if not was_frozen:
                return words(f"`{app}` is not frozen.")
            return _lines([para(f"☀ `{app}` unfrozen by ", Mention(by), "; deploys may go ahead.")])
        case Released(app=app, version=version, by=by, incident_id=incident_id):
            if not incident_id:
                return words(f"`{app}` `{version}` is not quarantined.")
            return _lines([
                para(f"🔓 `{app}` `{version}` released by ", Mention(by), ": it may be deployed "
                     f"again (it was rolled back by incident `{incident_id}`)."),
            ])  # fmt: skip
        case GroupOpenedFromPlan(group=group):
            return words(
                f"⏪ The group `{group.group}` opened from plan `{group.id}`: "
                + ", ".join(f"`{p.app}` → `{p.target}` (incident `{p.id}`)" for p in group.plans)
                + "."
            )
        case GroupPlanMade(group=group):
            return words(group_summary(group))
        case PlanMade(plan=plan):
            return words(f"Plan `{plan.id}` for `{plan.app}` → `{plan.target}` is made.")


def status_message(incident: Incident) -> Message:
    """`status`: the incident's lines and, when it waits for a click, how to answer it here."""
    lines = views.status_lines(incident)
    if incident.gate is not None:
        view = views.gate_view(incident, incident.gate)
        labels = " / ".join(b.label for b in view.buttons)
        lines += [para(), view.question, para(f"Waiting for: {labels}")]
        lines.append(para(f"Answer it here: python -m bot resume {incident.id}"))
    return _lines(lines)


def _lines(lines: list[Paragraph]) -> Message:
    return Message(tuple(lines))
