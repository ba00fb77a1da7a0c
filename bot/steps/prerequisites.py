"""Prerequisites: checked, not assumed — the issue confirmed, stakeholders told, the policy."""

from __future__ import annotations

from bot.errors import StepError
from bot.steps.context import Outcome, StepContext
from bot.workflow.facts import PrerequisitesFacts


async def run(ctx: StepContext) -> Outcome:
    inc = ctx.incident
    if not inc.reason.strip():
        raise StepError(
            "the issue is not confirmed: no reason was given",
            hint="Say what broke (cancel and start again with a reason).",
        )
    notified = list(ctx.facts.prerequisites.notified_start)
    if not notified and ctx.app.notify:
        notified = await ctx.notifier.stakeholders(inc, "start")
    held = [c for c in await ctx.notifier.held_notices(inc) if c not in notified]
    missing = sorted(set(ctx.app.notify) - set(notified) - set(held))
    facts = PrerequisitesFacts(notified_start=notified, notices_held=held)
    ctx.facts.prerequisites = facts  # kept on failure: a Retry does not tell them twice
    if missing:
        raise StepError(
            "stakeholders could not be notified in " + ", ".join(f"<#{c}>" for c in missing),
            hint="Invite the bot to those channels (or fix `notify`), then Retry.",
        )
    policy = (
        "production: an approver other than the requester must approve the start and any "
        "database change (four-eyes)"
        if inc.production
        else f"{inc.environment}: database changes need an approver"
    )
    if notified or not held:
        told = ", ".join(f"<#{c}>" for c in notified) or "no stakeholder channels configured"
        told = f"Stakeholders told: {told}."
    else:
        told = ""
    if held:
        told += (
            f"{' ' if told else ''}Stakeholders NOT told yet (Slack unreachable): "
            + ", ".join(f"<#{c}>" for c in held)
            + "; the notice is kept and posted when Slack answers."
        )
    summary = f"Issue: “{inc.reason}”. {told} Policy: {policy}."
    facts.policy = policy
    return Outcome(summary=summary, facts=facts)
