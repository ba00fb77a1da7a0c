"""Post-rollback actions: write the incident report, commit it, post it in the thread."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from bot.config.apps_file import AppsFile
from bot.ports import AuditEntry, Directory, Notifier, Repos
from bot.steps.context import Outcome, StepContext
from bot.views import report as report_md
from bot.views.group_report import group_report_filename, render_group_report
from bot.workflow.facts import ReportFacts
from bot.workflow.messages import Mark, Status
from bot.workflow.messages import message as said
from bot.workflow.model import Criterion, Incident
from bot.workflow.render_text import Names
from bot.workflow.steps import STEPS


def incidents_dir(configured: str) -> Path:
    return (Path.cwd() / Path(configured).expanduser()).resolve()


@dataclass(frozen=True)
class Published:
    facts: ReportFacts
    where: str


async def names_for(
    inc: Incident, apps: AppsFile, timeline: list[AuditEntry], people: Directory | None
) -> Names:
    """Everyone the report names, by the name people know: the apps file's `people:` first, then
    the directory (Slack's users.info); an id neither knows stays the id."""
    ids = {inc.requested_by, inc.ended_by, *(a.user for a in inc.approvals)}
    ids |= {rec.by for rec in inc.steps} | {str(e.get("who", "")) for e in timeline}
    known = {uid: name for name, uid in apps.people.items()}
    wanted = sorted(i for i in ids if report_md.is_person(i) and i not in known)
    if wanted and people is not None:
        known |= await people.names(wanted)
    return lambda uid: known.get(uid, uid)


async def publish(
    inc: Incident,
    apps: AppsFile,
    timeline: list[AuditEntry],
    notifier: Notifier,
    repos: Repos,
    people: Directory | None = None,
) -> Published:
    """Write the report (and the postmortem when major), commit it, post it in the thread."""
    directory = incidents_dir(apps.incidents.dir)
    names = await names_for(inc, apps, timeline, people)
    content = report_md.render_report(inc, timeline, STEPS, names)
    name = report_md.report_filename(inc)
    path = directory / name
    files = {path: content}
    if inc.major:
        files[directory / report_md.postmortem_filename(inc)] = report_md.render_postmortem(
            inc, name
        )

    def write() -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for target, text in files.items():
            if target.name.startswith("postmortem-") and target.exists():
                continue  # people may already be filling it in
            target.write_text(text, encoding="utf-8")

    await asyncio.to_thread(write)
    what = f"rolled back to {inc.target}" if inc.status.open else f"{inc.status.value}"
    message = f"Incident report: {inc.app} {what} ({inc.id})"
    committed = await repos.commit_report(list(files), message)
    where = f"`{path}`"
    if committed.sha:
        where += f", commit `{committed.sha[:10]}`"
        where += " (pushed)" if committed.pushed else ""
    if committed.note:
        where += f" — {committed.note}"
    await notifier.upload(
        inc, name, content, title=f"Incident report {inc.id}", comment=f"Incident report: {where}"
    )
    if inc.major:
        pm = directory / report_md.postmortem_filename(inc)
        await notifier.upload(
            inc,
            pm.name,
            await asyncio.to_thread(pm.read_text, encoding="utf-8"),
            title=f"Postmortem {inc.id}",
            comment="Major incident: the postmortem template to fill in.",
        )
    if committed.push_error:
        await notifier.say(
            inc,
            said(
                Mark(Status.WARN),
                f" The report is committed but the push failed: {committed.push_error}. "
                f"Push `{directory}` by hand.",
            ),
        )
    facts = ReportFacts(path=str(path), commit=committed.sha or "", pushed=committed.pushed)
    if inc.major:
        facts.postmortem_path = str(directory / report_md.postmortem_filename(inc))
    return Published(facts, where)


async def run(ctx: StepContext) -> Outcome:
    group = ctx.incident.group
    if group is not None and not group.is_lead(ctx.incident.id):
        return Outcome(
            summary=f"In the group's one report (`{group.apps[0]}`'s step writes it).",
            criteria={Criterion.REPORT: True},
        )
    if group is not None and ctx.members is not None:
        return await _group_report(ctx, await ctx.members())
    published = await publish(
        ctx.incident, ctx.apps, await ctx.timeline(), ctx.notifier, ctx.repos, ctx.people
    )
    ctx.facts.report = published.facts
    return Outcome(
        summary=f"Report written: {published.where}",
        facts=published.facts,
        criteria={Criterion.REPORT: True},
    )


async def _group_report(
    ctx: StepContext, members: list[tuple[Incident, list[AuditEntry]]]
) -> Outcome:
    """One report for the whole group: each app's versions and timeline, one impact section."""
    lead = ctx.incident
    incidents = [lead if m.id == lead.id else m for m, _ in members]
    published = await publish_group(
        lead, incidents, [t for _, t in members], ctx.apps, ctx.notifier, ctx.repos, ctx.people
    )
    ctx.facts.report = published.facts
    return Outcome(
        summary=f"Report of the group written: {published.where}",
        facts=published.facts,
        criteria={Criterion.REPORT: True},
    )


async def publish_group(
    inc: Incident,
    members: list[Incident],
    timelines: list[list[AuditEntry]],
    apps: AppsFile,
    notifier: Notifier,
    repos: Repos,
    people: Directory | None = None,
) -> Published:
    """A group's one report (written by its lead's step, or by the last member to end when the
    group was aborted), committed and posted in the group's thread by `inc`."""
    lead = members[0]
    directory = incidents_dir(apps.incidents.dir)
    names = await names_for(lead, apps, [e for t in timelines for e in t], people)
    content = render_group_report(members, timelines, STEPS, names)
    name = group_report_filename(lead)
    path = directory / name

    def write() -> None:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")

    await asyncio.to_thread(write)
    group = lead.group.name if lead.group else lead.app
    committed = await repos.commit_report([path], f"Incident report: group {group} ({lead.id})")
    where = f"`{path}`" + (f", commit `{committed.sha[:10]}`" if committed.sha else "")
    await notifier.upload(
        inc, name, content, title=f"Incident report {lead.id} (group {group})",
        comment=f"Incident report of the group: {where}", whole_group=True,
    )  # fmt: skip
    facts = ReportFacts(path=str(path), commit=committed.sha or "", pushed=committed.pushed)
    return Published(facts, where)
