"""A command's `Reply` (`bot.fronts.dispatch`) in Slack's words and mrkdwn."""

from __future__ import annotations

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
from bot.fronts.slack import blocks
from bot.plan.group import summary as group_summary


def reply_text(reply: Reply) -> str:
    """A command's reply in Slack mrkdwn."""
    match reply:
        case Opened(incident=incident, version=version):
            link = incident.thread.permalink if incident.thread else ""
            return (
                f":rewind: Incident `{incident.id}` opened for `{incident.app}`"
                + (f" → `{version}`" if version else "")
                + (f". Follow it in the <{link}|thread>." if link else ".")
            )
        case Listing(incidents=incidents, empty=empty):
            return blocks.incident_list(incidents) if incidents else empty
        case StatusOf(incident=incident):
            return blocks.incident_status(incident)
        case Cancelled(incident_id=incident_id):
            return f"Incident `{incident_id}` cancelled. The thread says what was rolled back."
        case Unfrozen(app=app, by=by, was_frozen=was_frozen):
            if not was_frozen:
                return f"`{app}` is not frozen."
            return f":sunny: `{app}` unfrozen by <@{by}>; deploys may go ahead."
        case NoIncidents(app=app):
            return f"`{app}` has no incidents."
        case Released(app=app, version=version, by=by, incident_id=incident_id):
            if not incident_id:
                return f"`{app}` `{version}` is not quarantined."
            return (
                f":unlock: `{app}` `{version}` released by <@{by}>: "
                f"it may be deployed again (it was rolled back by incident `{incident_id}`)."
            )
        case OpenedFromPlan(incident=incident, plan=plan):
            link = incident.thread.permalink if incident.thread else ""
            return (
                f":rewind: Incident `{incident.id}` opened from plan `{plan.id}` for `{plan.app}` "
                f"→ `{plan.target}`" + (f". Follow it in the <{link}|thread>." if link else ".")
            )
        case GroupOpenedFromPlan(incident=incident, group=group):
            link = incident.thread.permalink if incident.thread else ""
            return (
                f":rewind: The group `{group.group}` opened from plan `{group.id}`: "
                + ", ".join(f"`{p.app}` → `{p.target}` (incident `{p.id}`)" for p in group.plans)
                + (f". Follow it in the <{link}|thread>." if link else ".")
            )
        case GroupPlanMade(group=group):
            return f"```{group_summary(group)}```"
        case PlanMade(plan=plan):
            return f"Plan `{plan.id}` for `{plan.app}` → `{plan.target}` is made."
