"""The incident report and the postmortem template, as Markdown. Pure: no I/O.

The runbook's "Document the Incident" asks for what failed, why we rolled back, the impact and
the next steps; the timeline comes from the audit trail, the impact from the monitor figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from bot.ports import AuditEntry
from bot.views.report_signals import signals_section
from bot.workflow import said
from bot.workflow.facts import MonitorFacts
from bot.workflow.messages import message
from bot.workflow.model import Criterion, Incident, StepId, StepRecord, StepStatus
from bot.workflow.render_text import Names, markdown
from bot.workflow.steps import StepSpec

PLAN_THE_FIX = (
    "What caused the issue?",
    "How to fix it properly?",
    "How to prevent it in the future?",
    "When to attempt deployment again?",
)

_STATUS_MARK = {
    StepStatus.SUCCEEDED: "✅ done",
    StepStatus.SKIPPED: "➖ skipped",
    StepStatus.FAILED: "❌ failed",
    StepStatus.RUNNING: "⏳ running",
    StepStatus.WAITING: "⏸ waiting",
    StepStatus.PENDING: "⬜ not run",
}


def report_filename(incident: Incident) -> str:
    return f"rollback-{incident.created_at:%Y%m%d}-{incident.app}-{incident.id}.md"


def postmortem_filename(incident: Incident) -> str:
    return f"postmortem-{incident.created_at:%Y%m%d}-{incident.app}-{incident.id}.md"


def cell(value: object) -> str:
    """A value made safe for one Markdown table cell."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def when(value: object) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = str(value or "")
    try:
        return when(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return text


def duration(seconds: float) -> str:
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def is_person(who: str) -> bool:
    """A chat user or group id (`U0CAROL`), not a process (`rewind`, `worker-1`)."""
    return bool(who) and who[0] in "UWS" and who[1:].isalnum()


def _who(user: str, names: Names) -> str:
    return f"@{names(user)}" if is_person(user) else user


def _summary(incident: Incident, rec: StepRecord, names: Names) -> str:
    """A step's summary with the person who chose it, by name."""
    return markdown(message(*said.summary(incident, rec)), names) if rec.summary else ""


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def _criteria(incident: Incident, report_done: bool) -> list[tuple[Criterion, bool | None]]:
    states = dict(incident.criteria)
    if report_done:
        states[Criterion.REPORT] = True  # this document is the report
    return [(c, states.get(c)) for c in Criterion]


def _mark(ok: bool | None) -> str:
    return {True: "✅", False: "❌", None: "⬜"}[ok]


def _what_failed(incident: Incident) -> list[str]:
    facts = incident.facts.assess
    out = ["## What failed", "", incident.reason or "_No reason was given._", ""]
    if facts.deployed:
        out.append(f"- Version deployed when it broke: `{facts.deployed}`")
    if facts.deployed_by_host:
        hosts = ", ".join(f"{h} `{v}`" for h, v in sorted(facts.deployed_by_host.items()))
        out.append(f"- On the hosts: {hosts}")
    if incident.target:
        sha = facts.target_sha
        out.append(f"- Last working version: `{incident.target}`" + (f" (`{sha}`)" if sha else ""))
    if facts.commits:
        out.append(f"- Changes being rolled back: {len(facts.commits)} commit(s)")
        out += [f"  - `{c.sha[:10]}` {c.subject}".rstrip() for c in facts.commits[:20]]
    if facts.migrations or incident.step(StepId.ASSESS).status is StepStatus.SUCCEEDED:
        listed = ", ".join(f"`{m.revision}`" for m in facts.migrations)
        out.append(f"- Database migrations to undo: {listed or 'none'}")
    assessed = incident.step(StepId.ASSESS).summary
    if assessed:
        out.append(f"- Assessment: {assessed}")
    out.append("")
    return out


_APPROVED: dict[tuple[str, str], str] = {
    ("approve_start", ""): "the start of the production rollback",
    ("approve_db", "approve"): "the database downgrade",
    ("approve_db", "restore"): "the database restore from backup",
    ("approve_db", ""): "the database rollback",
    ("retry", "restore"): "the database restore from backup",
    ("retry", "retry"): "a retry of the database rollback",
    ("retry", ""): "a retry",
}


def _why(incident: Incident, names: Names) -> list[str]:
    out = ["## Why we rolled back", ""]
    decided = _summary(incident, incident.step(StepId.DECIDE), names)
    if decided:
        out.append(f"- Decision: {decided}")
    elif incident.decision is not None:
        out.append(f"- Decision: {incident.decision.value.replace('_', ' ')}")
    out.append(
        "- The runbook's rule: roll back when the issue is severe and a fix would take time; "
        "fix forward when it is minor and quick."
    )
    if incident.reason:
        out.append(f"- Reported by {_who(incident.requested_by, names)}: {incident.reason}")
    for approval in incident.approvals:
        what = _APPROVED.get((approval.kind.value, approval.choice)) or _APPROVED.get(
            (approval.kind.value, "")
        )
        if what is None:  # a kind added later: still said in words
            what = f"{approval.kind.value.replace('_', ' ')} ({approval.choice or 'approved'})"
        out.append(f"- {_who(approval.user, names)} approved {what} at {when(approval.at)}")
    if incident.db_method:
        out.append(f"- Database: {incident.db_method}")
    out.append("")
    return out


def _impact(incident: Incident) -> list[str]:
    out = ["## Impact", ""]
    start = incident.created_at
    recovered = _finished(incident, StepId.VERIFY)
    redeployed = _finished(incident, StepId.REDEPLOY)
    out.append(f"- Incident opened: {when(start)}")
    if redeployed is not None:
        out.append(
            f"- Previous version live on every host: {when(redeployed)} "
            f"({duration((redeployed - start).total_seconds())} after the incident was opened)"
        )
    if recovered is not None:
        out.append(
            f"- Service verified healthy: {when(recovered)} "
            f"(time to recovery {duration((recovered - start).total_seconds())})"
        )
    end = incident.finished_at or incident.updated_at
    out.append(f"- Incident duration so far: {duration((end - start).total_seconds())}")
    hosts = incident.facts.assess.deployed_by_host or incident.facts.redeploy.versions_by_host
    if hosts:
        out.append(f"- Hosts affected: {len(hosts)} ({', '.join(sorted(hosts))})")
    mon = incident.facts.monitor
    if mon.rounds or mon.urls:
        out += _monitor_lines(mon)
    else:
        out.append("- Monitoring: no figures (the monitor step did not run)")
    out.append("")
    return out


def _finished(incident: Incident, step: StepId) -> datetime | None:
    rec = incident.step(step)
    return rec.finished_at if rec.status is StepStatus.SUCCEEDED else None


def _monitor_lines(mon: MonitorFacts) -> list[str]:
    avail = mon.availability
    out = [
        f"- Monitored for {duration(mon.elapsed)} after the rollback: "
        f"availability {'n/a' if avail is None else f'{avail:g}%'}, "
        f"{mon.error_count} error line(s) in logs, {mon.alerts} alert(s)",
    ]
    if mon.vs_baseline:
        out.append(f"- Compared with before the bad deploy: {mon.vs_baseline}")
    out.append("")
    if mon.urls:
        rows = [
            (
                u.url,
                u.host or "all",
                u.probes,
                "n/a" if u.availability is None else f"{u.availability:g}%",
                _ms(u.p50_ms),
                _ms(u.p95_ms),
            )
            for u in mon.urls
        ]
        out += _table(("URL", "Host", "Probes", "Availability", "p50", "p95"), rows)
    return out


def _ms(value: object) -> str:
    return "n/a" if value is None else f"{float(str(value)):.0f} ms"


def _timeline(timeline: Sequence[AuditEntry], names: Names) -> list[str]:
    out = ["## Timeline", ""]
    if not timeline:
        return [*out, "_The audit trail is empty._", ""]
    rows = [
        (
            when(e.get("at")),
            _who(str(e.get("who", "")), names),
            e.get("what", ""),
            e.get("result", ""),
        )
        for e in timeline
    ]
    return [*out, *_table(("Time", "Who", "What", "Result"), rows), ""]


def _steps(incident: Incident, specs: Mapping[StepId, StepSpec], names: Names) -> list[str]:
    rows = []
    for rec in incident.steps:
        spec = specs.get(rec.id)
        title = spec.title if spec else str(rec.id)
        runbook = spec.runbook if spec else ""
        summary = _summary(incident, rec, names) or (rec.error.plain() if rec.error else "")
        status = _STATUS_MARK.get(rec.status, str(rec.status))
        if rec.id is StepId.REPORT and rec.status is StepStatus.RUNNING:
            status, summary = "✅ done", summary or "this report"  # written as the step ends
        elif rec.status is StepStatus.RUNNING and not incident.status.open:
            status = "⏹ stopped"  # cut short when the incident ended
        rows.append((title, runbook, status, summary))
    return ["## Steps", "", *_table(("Step", "Runbook", "Status", "Result"), rows), ""]


def _completion(incident: Incident) -> list[str]:
    out = ["## Completion criteria", ""]
    states = _criteria(incident, report_done=True)
    out += [f"- {_mark(ok)} {c.value}" for c, ok in states]
    unmet = [c.value for c, ok in states if ok is not True]
    out.append("")
    if unmet:
        out.append(f"**Not complete**: {', '.join(unmet)}.")
    else:
        out.append("**All criteria met.**")
    out.append("")
    return out


def _next_steps(incident: Incident) -> list[str]:
    out = ["## Next steps", "", "### Plan the fix", ""]
    out += [f"- [ ] {q}\n  - _answer:_" for q in PLAN_THE_FIX]
    out += [
        "",
        f"- [ ] Deploys of {incident.app} are frozen after this rollback: an approver lifts "
        f"it with `/rollback unfreeze {incident.app}` once the fix is ready.",
        "- [ ] Don't rush to redeploy without fixing the issue.",
    ]
    if incident.major:
        out.append("- [ ] Major incident: complete the postmortem.")
    if incident.facts.code.hotfix_ref:
        out.append(f"- [ ] Merge or delete the branch `{incident.facts.code.hotfix_ref}`.")
    out.append("")
    return out


def _status(incident: Incident) -> str:
    if not incident.status.open:
        return incident.status.value.replace("_", " ")
    # The report is the last step: written while the incident is still open.
    unmet = [c for c, ok in _criteria(incident, report_done=True) if ok is not True]
    return "recovered: all completion criteria met" if not unmet else "open: not complete"


def render_report(
    incident: Incident,
    timeline: Sequence[AuditEntry],
    specs: Iterable[StepSpec],
    names: Names = str,
) -> str:
    """`names`: a person's id -> the name people know (read in git, not in Slack: never
    `<@U…>`); an id nobody named is written as the id."""
    by_id = {s.id: s for s in specs}
    deployed = incident.facts.assess.deployed or "?"
    target = incident.target or "?"
    header = [
        f"# Incident report: rollback of {incident.app} from {deployed} to {target}",
        "",
        *_table(
            ("", ""),
            [
                ("Incident", f"`{incident.id}`"),
                ("App", f"{incident.app} ({incident.environment})"),
                ("Status", _status(incident)),
                *([("Outcome", _outcome(incident, names))] if incident.outcome else []),
                ("Opened", f"{when(incident.created_at)} by {_who(incident.requested_by, names)}"),
                (
                    ("Closed", when(incident.finished_at))
                    if incident.finished_at
                    else ("Written", f"{when(datetime.now(UTC))}, as the last step")
                ),
                ("Major incident", "yes" if incident.major else "no"),
                ("Thread", incident.thread.permalink if incident.thread else ""),
            ],
        ),
        "",
    ]
    return "\n".join(
        [
            *header,
            *_what_failed(incident),
            *_why(incident, names),
            *_impact(incident),
            *signals_section(incident),
            *_timeline(timeline, names),
            *_steps(incident, by_id, names),
            *_completion(incident),
            *_next_steps(incident),
        ]
    )


def _outcome(incident: Incident, names: Names) -> str:
    return markdown(said.outcome(incident), names)


def render_postmortem(incident: Incident, report_name: str) -> str:
    """A blameless postmortem to fill in; facts are in the incident report it links to."""
    target = incident.target or "?"
    lines = [
        f"# Postmortem: {incident.app} rolled back to {target} ({incident.created_at:%Y-%m-%d})",
        "",
        f"Incident `{incident.id}` — facts, timeline and figures: [{report_name}]({report_name})",
        "",
        "_Blameless: describe what the system and the process allowed, not who slipped._",
        "",
        "## Summary",
        "",
        f"{incident.reason or '_What happened, in two sentences._'}",
        "",
        "## Impact",
        "",
        "- Who was affected, how, and for how long:",
        "- Data affected:",
        "",
        "## Root cause",
        "",
        "## Detection",
        "",
        "- How we found out, and how long that took:",
        "",
        "## Response",
        "",
        "- What went well:",
        "- What went badly:",
        "- Where we got lucky:",
        "",
        "## Plan the fix",
        "",
        *[f"- {q}" for q in PLAN_THE_FIX],
        "",
        "## Action items",
        "",
        *_table(("Action", "Owner", "Due", "Ticket"), [("", "", "", "")]),
        "",
    ]
    return "\n".join(lines)
