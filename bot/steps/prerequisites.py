"""Prerequisites: checked, not assumed — the issue confirmed, stakeholders told, the policy."""

from __future__ import annotations

from bot.steps.context import Outcome, StepContext
from bot.workflow.errors import StepError
from bot.workflow.facts import PrerequisitesFacts


async def run(ctx: StepContext) -> Outcome:
    inc = ctx.incident
    if not inc.reason.strip():
        raise StepError(
            "the issue is not confirmed: no reason was given",
            hint="Say what broke (cancel and start again with a reason).",
        )
    channels = _stakeholders(ctx)
    notified = list(ctx.facts.prerequisites.notified_start)
    if not notified and channels:
        # A group's lead tells of the group: each app, in order, with its version.
        members = [m for m, _ in await ctx.members()] if ctx.members is not None else []
        notified = await ctx.notifier.stakeholders(inc, "start", channels, members)
    held = [c for c in await ctx.notifier.held_notices(inc) if c not in notified]
    missing = sorted(set(channels) - set(notified) - set(held))
    facts = PrerequisitesFacts(notified_start=notified, notices_held=held)
    ctx.facts.prerequisites = facts  # kept on failure: a Retry does not tell them twice
    if missing:
        error = StepError(
            f"stakeholders could not be notified in {len(missing)} channel(s)",
            hint="Invite the bot to those channels (or fix `notify`), then Retry.",
        )
        error.channels = missing
        raise error
    policy = (
        "production: an approver other than the requester must approve the start and any "
        "database change (four-eyes)"
        if inc.production
        else f"{inc.environment}: database changes need an approver"
    )
    # The channels are in the facts: each front names them its own way (`said.summary`).
    facts.policy = policy
    return Outcome(summary=f"Issue: “{inc.reason}”. Policy: {policy}.", facts=facts)


def _stakeholders(ctx: StepContext) -> list[str]:
    """The app's `notify` channels; in a group, the lead tells every member's, each once, and
    the other members tell nobody."""
    group = ctx.incident.group
    if group is None:
        return list(ctx.app.notify)
    if not group.is_lead(ctx.incident.id):
        return []
    channels: list[str] = []
    for name in group.apps:
        app = ctx.apps.app(name)
        channels += [c for c in (app.notify if app else []) if c not in channels]
    return channels
