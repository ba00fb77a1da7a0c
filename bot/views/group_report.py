"""The report of a release group (`/rollback GROUP`), as Markdown: one file for the whole group,
with each app's versions, each app's timeline and steps, and one impact section. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from bot.ports import AuditEntry
from bot.views.report import _steps, _table, _timeline, _who, duration, when
from bot.workflow import said
from bot.workflow.model import Incident, StepId, StepStatus
from bot.workflow.render_text import Names, markdown
from bot.workflow.steps import StepSpec


def group_report_filename(lead: Incident) -> str:
    name = lead.group.name if lead.group else lead.app
    return f"rollback-{lead.created_at:%Y%m%d-%H%M}-group-{name}-{lead.id}.md"


def _finished(incident: Incident, step: StepId) -> datetime | None:
    rec = incident.step(step)
    return rec.finished_at if rec.status is StepStatus.SUCCEEDED else None


def _status(m: Incident) -> str:
    if m.status.open:
        unmet = [c for c, ok in m.criteria.items() if ok is not True and c.name != "REPORT"]
        return "recovered: all completion criteria met" if not unmet else "open: not complete"
    return m.status.value.replace("_", " ")


def _impact(members: Sequence[Incident]) -> list[str]:
    """One impact section for the whole release."""
    start = min(m.created_at for m in members)
    out = ["## Impact", "", f"- Incident opened: {when(start)}"]
    for m in members:
        done = _finished(m, StepId.REDEPLOY)
        if done is not None:
            after = duration((done - start).total_seconds())
            out.append(f"- `{m.app}` back on `{m.target}` on every host: {when(done)} ({after})")
        else:
            out.append(f"- `{m.app}`: not redeployed")
    verified = [_finished(m, StepId.VERIFY) for m in members]
    if verified and all(v is not None for v in verified):
        last = max(v for v in verified if v is not None)
        took = duration((last - start).total_seconds())
        out.append(f"- Every app verified healthy: {when(last)} (time to recovery {took})")
    end = max((m.finished_at or m.updated_at) for m in members)
    out.append(f"- Incident duration so far: {duration((end - start).total_seconds())}")
    hosts = sum(len(m.facts.assess.deployed_by_host) for m in members)
    out.append(f"- Hosts affected: {hosts}, across {len(members)} apps")
    for m in members:
        mon = m.facts.monitor
        if mon.rounds:
            figures = f"{mon.rounds} round(s)"
            if mon.availability is not None:
                figures += f", availability {mon.availability:.1f} %"
            if mon.p95_ms is not None:
                figures += f", p95 {mon.p95_ms:.0f} ms"
            out.append(f"- `{m.app}` monitored: {figures}, {mon.error_count} error line(s)")
    return [*out, ""]


def render_group_report(
    members: Sequence[Incident],
    timelines: Sequence[Sequence[AuditEntry]],
    specs: Iterable[StepSpec],
    names: Names = str,
) -> str:
    """`members` in the group's order, the lead first; `timelines` likewise."""
    lead = members[0]
    group = lead.group.name if lead.group else lead.app
    by_id = {s.id: s for s in specs}
    lines = [
        f"# Incident report: rollback of the release group {group} "
        f"({', '.join(m.app for m in members)})",
        "",
        *_table(
            ("", ""),
            [
                ("Incident", f"`{lead.id}` (group `{group}`)"),
                ("Opened", f"{when(lead.created_at)} by {_who(lead.requested_by, names)}"),
                ("Written", f"{when(datetime.now(UTC))}, as the last step"),
                ("Thread", lead.thread.permalink if lead.thread else ""),
            ],
        ),
        "",
        "## What failed",
        "",
        lead.reason or "_No reason was given._",
        "",
        "## Versions",
        "",
        *_table(
            ("App", "Environment", "Incident", "Deployed (bad)", "Rolled back to", "Status"),
            [
                (
                    m.app,
                    m.environment,
                    f"`{m.id}`",
                    m.facts.assess.deployed or "?",
                    m.target or "?",
                    _status(m),
                )
                for m in members
            ],
        ),
        "",
        *_impact(members),
    ]
    for m, timeline in zip(members, timelines, strict=True):
        lines += [f"## `{m.app}`", ""]
        if m.outcome:
            lines += [markdown(said.outcome(m), names), ""]
        lines += _deeper(_timeline(timeline, names)) + _deeper(_steps(m, by_id, names))
    return "\n".join(lines)


def _deeper(lines: list[str]) -> list[str]:
    """A section of the one-app report as a subsection of the app's own."""
    return ["#" + line if line.startswith("## ") else line for line in lines]
