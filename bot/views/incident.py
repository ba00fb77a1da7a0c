"""What an incident's thread shows, for every front: the checklist, the criteria, the gates.

Pure: reads an `Incident` (its typed facts) and returns `bot.workflow.messages` pieces — a line is a
`Paragraph`, a person a `Mention`, a link a `Link`. Slack renders them as mrkdwn and Block Kit
(`bot/fronts/slack/`), the terminal and the demo as plain text with names
(`bot.workflow.render_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal

from bot.views.report import duration as fmt_duration
from bot.workflow import said, units
from bot.workflow.facts import (
    CommitFact,
    Facts,
    MigrationFact,
    MonitorFacts,
    ResourceFact,
    SignalFact,
    UrlFigures,
)
from bot.workflow.messages import Emphasis, Inline, Link, Mention, Paragraph, para
from bot.workflow.model import (
    Criterion,
    ErrorInfo,
    Gate,
    GateKind,
    Incident,
    MemberRow,
    Status,
    StepId,
    StepRecord,
    StepStatus,
)
from bot.workflow.steps import ORDER, SPECS, STEPS

ELLIPSIS = "…"
BUTTON_MAX = 75

STEP_MARK: dict[StepStatus, str] = {
    StepStatus.PENDING: "⬜",
    StepStatus.RUNNING: "⏳",
    StepStatus.WAITING: "✋",
    StepStatus.SUCCEEDED: "✅",
    StepStatus.FAILED: "❌",
    StepStatus.SKIPPED: "➖",
}

STATUS_MARK: dict[Status, str] = {
    Status.RUNNING: "⏳",
    Status.WAITING: "✋",
    Status.PAUSED: "⚠️",
    Status.COMPLETED: "✅",
    Status.FIXED_FORWARD: "➡️",
    Status.ABORTED: "🛑",
    Status.CANCELLED: "🚫",
}

STATUS_WORDS: dict[Status, str] = {
    Status.RUNNING: "running",
    Status.WAITING: "waiting for a person",
    Status.PAUSED: "paused after a failure",
    Status.COMPLETED: "completed",
    Status.FIXED_FORWARD: "closed: fix forward",
    Status.ABORTED: "aborted",
    Status.CANCELLED: "cancelled",
}

GATE_WAITING: dict[GateKind, str] = {
    GateKind.DECISION: "waiting for the decision: roll back or fix forward",
    GateKind.APPROVE_START: "waiting for an approver to start",
    GateKind.APPROVE_DB: "waiting for approval of the database rollback",
    GateKind.RETRY: "paused: Retry or Abort",
    GateKind.GROUP: "waiting for the other apps of its group",
}


# ---- small text tools ------------------------------------------------------------------------


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def truncate_tail(text: str, limit: int) -> str:
    """Keep the end (where errors are): "…" + the last characters."""
    if len(text) <= limit:
        return text
    return ELLIPSIS + text[-(limit - 1) :]


def first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def short_rev(rev: Any, n: int = 4) -> str:
    return str(rev)[:n] if rev else "base"


def short_name(path: str) -> str:
    return PurePosixPath(str(path)).name or str(path)


def fmt_time(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(incident: Incident, now: datetime | None = None) -> str:
    end = incident.finished_at or now or datetime.now(UTC)
    return fmt_duration((end - incident.created_at).total_seconds())


def fmt_number(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return str(value)


def first_line_of(parts: Sequence[Inline], limit: int = 500) -> tuple[Inline, ...]:
    """The pieces up to the first line break; words cut at `limit` characters in all."""
    out: list[Inline] = []
    room = limit
    for part in parts:
        if isinstance(part, str):
            head, newline, _ = part.partition("\n")
            out.append(truncate(head, room))
            room -= len(head)
            if newline or room <= 0:
                break
        else:
            out.append(part)
    return tuple(out)


# ---- the parent message ----------------------------------------------------------------------


def title(incident: Incident) -> str:
    group = incident.group
    if group is not None and group.rows:  # the lead's parent: the whole group
        return f"Rollback of the group {group.name}: " + ", ".join(group.apps)
    return f"Rollback {incident.app} → {incident.target or 'previous version'}"


def header_text(incident: Incident) -> str:
    return f"{STATUS_MARK.get(incident.status, '')} {title(incident)}"


def state_words(incident: Incident) -> str:
    if incident.gate is not None and incident.status.open:
        return GATE_WAITING[incident.gate.kind]
    if incident.status is Status.RUNNING:
        rec = incident.current_step()
        if rec is not None:
            return f"running: {SPECS[rec.id].title}"
    return STATUS_WORDS.get(incident.status, str(incident.status))


def deployed(incident: Incident) -> str:
    return incident.facts.assess.deployed or "—"


def field_pairs(incident: Incident) -> list[tuple[str, Paragraph]]:
    target = (
        f"`{incident.requested_version}`"
        if incident.requested_version
        else f"(previous version){' → `' + incident.target + '`' if incident.target else ''}"
    )
    return [
        ("App", para(f"`{incident.app}`")),
        ("Environment", para(incident.environment)),
        ("Requested target", para(target)),
        ("Deployed version", para(f"`{deployed(incident)}`" if deployed(incident) != "—" else "—")),
        ("Asked by", para(Mention(incident.requested_by))),
        ("Reason", para(incident.reason or "(none given)")),
        ("Incident", para(f"`{incident.id}`")),
        ("Started", para(fmt_time(incident.created_at))),
    ]


def step_line(incident: Incident, rec: StepRecord) -> Paragraph:
    spec = SPECS[rec.id]
    parts: list[Inline] = [f"{STEP_MARK.get(rec.status, '⬜')} ", Emphasis(spec.title)]
    if rec.attempts > 1:
        parts.append(f" (attempt {rec.attempts})")
    if rec.summary:
        parts += [" — ", *first_line_of(said.summary(incident, rec))]
    return Paragraph(tuple(parts))


def host_lines(rec: StepRecord) -> list[Paragraph]:
    return [
        para(
            truncate(
                f"      {'✅' if result.ok else '❌'} `{result.host or name}`: "
                f"{first_line(result.summary)}",
                300,
            )
        )
        for name, result in rec.hosts.items()
    ]


def checklist_lines(incident: Incident) -> list[Paragraph]:
    if incident.group is not None and incident.group.rows:
        return group_checklist_lines(incident)
    lines: list[Paragraph] = []
    for rec in incident.steps:
        lines.append(step_line(incident, rec))
        lines.extend(host_lines(rec))
        if rec.status is StepStatus.RUNNING:
            lines.extend(waiting_lines(incident))
    return lines


def group_checklist_lines(lead: Incident) -> list[Paragraph]:
    """A group's checklist: each runbook step, with a row per app under it, in the group's
    order. A step a member runs later than the runbook's order (the shared database's
    downgrade by an owner that keeps releases: after its own redeploy) is shown where it runs,
    in a section after the step it follows; the other members' rows of that step go with it
    when they skip it (they have no time of their own)."""
    assert lead.group is not None
    rows = lead.group.rows
    late = _late_steps(rows)
    lines: list[Paragraph] = []
    for key in _sections(late):
        step, after = key
        shown = [
            (row, rec)
            for row in rows
            if (rec := _rec(row, step)) is not None and _section_of(row, rec, late) == key
        ]
        if not shown:
            continue
        title: list[Inline] = [Emphasis(SPECS[step].title)]
        if after is not None:
            title.append(f" — runs after {SPECS[after].title}")
        lines.append(Paragraph(tuple(title)))
        for row, rec in shown:
            parts: list[Inline] = [f"      {STEP_MARK.get(rec.status, '⬜')} `{row.app}`"]
            if rec.summary:
                parts += [" — ", truncate(first_line(rec.summary), 200)]
            lines.append(Paragraph(tuple(parts)))
    return lines


Section = tuple[StepId, StepId | None]  # a step, and the step it runs after when out of order


def _rec(row: MemberRow, step: StepId) -> StepRecord | None:
    return next((r for r in row.steps if r.id is step), None)


def _late_steps(rows: Sequence[MemberRow]) -> dict[tuple[str, StepId], StepId]:
    """(app, step) -> the step it runs after, for each step a member stores after a step the
    runbook puts after it (its own order is the order it runs in)."""
    rank = {spec.id: i for i, spec in enumerate(STEPS)}
    late: dict[tuple[str, StepId], StepId] = {}
    for row in rows:
        latest: StepId | None = None
        for rec in row.steps:
            if latest is not None and rank[rec.id] < rank[latest]:
                late[(row.app, rec.id)] = latest
            else:
                latest = rec.id
    return late


def _section_of(row: MemberRow, rec: StepRecord, late: dict[tuple[str, StepId], StepId]) -> Section:
    if (after := late.get((row.app, rec.id))) is not None:
        return rec.id, after
    if rec.status is StepStatus.SKIPPED:  # no time of its own: beside the ones that run
        moved = sorted({a for (_, s), a in late.items() if s is rec.id}, key=ORDER.index)
        if moved:
            return rec.id, moved[0]
    return rec.id, None


def _sections(late: dict[tuple[str, StepId], StepId]) -> list[Section]:
    """The runbook's steps in order, each followed by the steps run after it out of order."""
    out: list[Section] = []
    for spec in STEPS:
        out.append((spec.id, None))
        moved = {(s, a) for (_, s), a in late.items() if a is spec.id}
        out += sorted(moved, key=lambda k: ORDER.index(k[0]))
    return out


def waiting_lines(incident: Incident) -> list[Paragraph]:
    """What a running step waits for, and for how long so far (never silent for long)."""
    waits = incident.facts.waiting
    return [para(truncate(f"      ⏳ {text}", 300)) for text in list(waits.values())[:5]]


def criterion_mark(ok: bool | None) -> str:
    return "✅" if ok is True else "❌" if ok is False else "⬜"


def criteria_lines(incident: Incident) -> list[Paragraph]:
    return [para(f"{criterion_mark(incident.criteria.get(c))} {c.value}") for c in Criterion]


def unmet_note(incident: Incident) -> str:
    """Once over: which criteria are unmet (the runbook: "do NOT mark complete" until all are)."""
    if incident.status.open:
        return ""
    unmet = incident.unmet_criteria()
    if not unmet:
        return "All completion criteria are met."
    return "⚠️ Not complete — unmet: " + ", ".join(c.value for c in unmet) + "."


def _figures(
    availability: float | None, errors: int | None, p50: float | None, p95: float | None
) -> str:
    """`availability 99.5% · errors 0 · p50 12 ms · p95 40 ms` (availability is a percent)."""
    parts: list[str] = []
    if availability is not None:
        parts.append(f"availability {fmt_number(availability)}%")
    if errors is not None:
        parts.append(f"errors {errors}")
    if p50 is not None:
        parts.append(f"p50 {fmt_number(p50)} ms")
    if p95 is not None:
        parts.append(f"p95 {fmt_number(p95)} ms")
    return " · ".join(parts) or "no figures yet"


def _url_line(figures: UrlFigures) -> Paragraph:
    host = f" ({figures.host})" if figures.host else ""
    where = f"`{truncate(figures.url, 200)}`{host}"
    tail = ""
    if figures.streak > 0 and figures.last:
        tail = f" · ❌ failing ×{figures.streak}: {truncate(first_line(figures.last), 120)}"
    shown = _figures(figures.availability, None, figures.p50_ms, figures.p95_ms)
    return para(truncate(f"• {where} — {shown}{tail}", 500))


VERDICT_MARK = {"passed": "✅", "failed": "❌", "inconclusive": "❔"}


def _signal_line(fact: SignalFact) -> Paragraph:
    """`• ❌ failed: checkout error rate 0.2 (before the bad deploy 0.1; max 0.01)`."""
    said = fact.said or fact.name
    return para(truncate(f"• {VERDICT_MARK[fact.verdict]} {fact.verdict}: {said}", 500))


def _usage_line(fact: ResourceFact) -> Paragraph:
    """`• ✅ web1: CPU 12 %, memory 40 %, disk 61 %`."""

    def pct(value: float | None) -> str:
        return "?" if value is None else f"{fmt_number(value)} %"

    usage = f"CPU {pct(fact.cpu)}, memory {pct(fact.memory)}, disk {pct(fact.disk)}"
    return para(truncate(f"• {VERDICT_MARK[fact.verdict]} {fact.host}: {usage}", 500))


def monitor_lines(mon: MonitorFacts) -> list[Paragraph]:
    """Live figures of the monitor step: the totals, the team's signals (each with its value and
    verdict) and each host's resource usage at the last round, then one line per URL."""
    if not mon.rounds and not mon.urls:
        return []
    state = "done" if mon.done else "so far"
    progress = f" ({fmt_duration(mon.elapsed)} of {fmt_duration(mon.duration)}, {state})"
    totals = _figures(mon.availability, mon.error_count, None, mon.p95_ms)
    if mon.signal_streak:
        totals += f" · ❌ signals failing ×{mon.signal_streak}"
    lines = [para(truncate(f"Overall{progress}: {totals}", 500))]
    lines.extend(_signal_line(s) for s in mon.signals[:10])
    lines.extend(_usage_line(r) for r in mon.resources[:10])
    lines.extend(_url_line(u) for u in mon.urls[:10])
    return lines


def outcome_parts(incident: Incident) -> tuple[Inline, ...]:
    """The outcome (who ended it is a `Mention`), or the state's words."""
    if incident.outcome or incident.ended_by:
        return said.outcome_parts(incident)
    return (STATUS_WORDS.get(incident.status, str(incident.status)),)


def outcome_line(incident: Incident) -> Paragraph | None:
    if incident.status.open:
        return None
    return para(
        f"{STATUS_MARK.get(incident.status, '')} ",
        Emphasis("Outcome:"),
        " ",
        *outcome_parts(incident),
        f" (took {duration(incident)})",
    )


def incident_line(incident: Incident) -> Paragraph:
    """One line per incident, for `/rollback list`, `status` and the App Home."""
    link = incident.thread.permalink if incident.thread and incident.thread.permalink else ""
    where: tuple[Inline, ...] = (" · ", Link(link, "thread")) if link else ()
    return para(
        f"{STATUS_MARK.get(incident.status, '')} `{incident.id}` ",
        Emphasis(incident.app),
        f" → `{incident.target or '?'}` ({incident.environment}) — "
        f"{truncate(state_words(incident), 300)} · by ",
        Mention(incident.requested_by),
        f" · {fmt_time(incident.created_at)}",
        *where,
    )


def status_lines(incident: Incident) -> list[Paragraph]:
    """Where one incident stands (`/rollback status INCIDENT`, in Slack and at the terminal)."""
    lines = [incident_line(incident), para(), *checklist_lines(incident), para()]
    lines.extend(criteria_lines(incident))
    if note := unmet_note(incident):
        lines.append(para(note))
    lines.extend(monitor_lines(incident.facts.monitor))
    if outcome := outcome_line(incident):
        lines.append(outcome)
    return lines


# ---- gates -----------------------------------------------------------------------------------

Choice = Literal["roll_back", "fix_forward", "approve", "restore", "retry", "abort"]


@dataclass(frozen=True)
class ButtonSpec:
    label: str
    choice: Choice  # the answer the machine takes (`bot.workflow.machine.Answer.choice`)
    option: str = ""
    style: Literal["primary", "danger"] | None = None
    confirm: tuple[str, str, str] | None = None  # title, text, confirm label


@dataclass
class GateView:
    question: Paragraph
    facts: list[Paragraph] = field(default_factory=list)
    code: list[tuple[Paragraph, str, Literal["head", "tail"]]] = field(default_factory=list)
    warning: Paragraph | None = None
    buttons: list[ButtonSpec] = field(default_factory=list)


def _abort_button(incident: Incident) -> ButtonSpec:
    return ButtonSpec(
        "Abort",
        "abort",
        style="danger",
        confirm=(
            "Abort the rollback?",
            f"Stops incident {incident.id} of {incident.app}. Steps already done are not "
            "undone; the thread says what was rolled back.",
            "Abort",
        ),
    )


def commit_line(commit: CommitFact) -> str:
    return truncate(f"`{commit.sha[:7]}` {first_line(commit.subject)}", 200)


def migration_line(mig: MigrationFact) -> str:
    # The direction of the undo: this revision back to the one before it.
    line = (
        f"{short_rev(mig.revision)} → {short_rev(mig.down_revision)}: "
        f"{first_line(mig.message) or '(no message)'}"
    )
    if mig.irreversible:
        line += " ⚠️ irreversible"
    return truncate(line, 200)


def _versions(incident: Incident) -> Paragraph:
    return para(
        Emphasis("Deployed"),
        f" `{deployed(incident)}` → ",
        Emphasis("target"),
        f" `{incident.target or '?'}`",
    )


def _labelled(label: str, text: str) -> Paragraph:
    return para(Emphasis(label), f" {text}")


def decision_view(incident: Incident) -> GateView:
    if incident.group is not None and incident.group.rows:
        return group_decision_view(incident)
    f = incident.facts.assess
    commits, migrations = f.commits, f.migrations
    facts = [_versions(incident)]
    count = max(f.commit_count, len(commits))
    facts.append(_labelled("Commits undone:", str(count)))
    facts.extend(para(f"    {commit_line(c)}") for c in commits[:5])
    if count > len(commits[:5]):
        facts.append(para(f"    … and {count - len(commits[:5])} more"))
    facts.append(_labelled("Migrations to undo:", str(len(migrations))))
    facts.extend(para(f"    {migration_line(m)}") for m in migrations[:8])
    if len(migrations) > 8:
        facts.append(para(f"    … and {len(migrations) - 8} more"))
    if f.code_method_recommended:
        reason = f.code_method_reason
        facts.append(
            _labelled(
                "Recommended:",
                f.code_method_recommended + (f" — {first_line(reason)}" if reason else ""),
            )
        )
    question = para(
        Emphasis("Roll back or fix forward?"),
        f" `{incident.app}` ({incident.environment}). Roll back if the issue is severe and a fix "
        "will take time; fix forward if it is minor and the fix is quick.",
    )
    buttons = [
        *_roll_back_buttons(incident),
        ButtonSpec("Fix forward", "fix_forward"),
        _abort_button(incident),
    ]
    return GateView(question=question, facts=facts, buttons=buttons)


def group_decision_view(lead: Incident) -> GateView:
    """The group's one decision: what rolling back means for each app, in the group's order
    (each app's own commits and migrations are in its Assess message above)."""
    assert lead.group is not None
    facts = [para(Emphasis("Each app, in the order they roll back:"))]
    for row in lead.group.rows:
        undo = f"{row.commits} commit(s), {row.migrations} migration(s) to undo"
        if row.irreversible:
            undo += " (one is irreversible: restore from a backup)"
        facts.append(
            para(
                f"    `{row.app}` ({row.environment or '?'}): `{row.deployed or 'unknown'}` → "
                f"`{row.target or '?'}`, {undo}"
            )
        )
    apps = ", ".join(f"`{a}`" for a in lead.group.apps)
    question = para(
        Emphasis("Roll back or fix forward?"),
        f" The group `{lead.group.name}` ({apps}). Roll back if the issue is severe and a fix "
        "will take time; fix forward if it is minor and the fix is quick.",
    )
    buttons = [
        *_roll_back_buttons(lead),
        ButtonSpec("Fix forward", "fix_forward"),
        _abort_button(lead),
    ]
    return GateView(question=question, facts=facts, buttons=buttons)


_METHOD_WORDS = {"revert": "revert merges", "tag": "take the tag"}


def _roll_back_buttons(incident: Incident) -> list[ButtonSpec]:
    """One Roll back button, or one per code method when both apply (recommended first)."""
    target = truncate(incident.target or "previous", 40)
    methods = list(incident.facts.assess.code_methods)
    if len(methods) < 2:
        return [ButtonSpec(f"Roll back to {target}", "roll_back", style="primary")]
    best = incident.facts.assess.code_method_recommended or methods[0]
    methods.sort(key=lambda m: m != best)
    return [
        ButtonSpec(
            f"Roll back to {target} ({_METHOD_WORDS[m]})",
            "roll_back",
            option=m,
            style="primary" if m == best else None,
        )
        for m in methods
    ]


def approve_start_view(incident: Incident) -> GateView:
    question = para(
        Emphasis("Production rollback:"),
        " an approver other than ",
        Mention(incident.requested_by),
        f" must approve before `{incident.app}` is rolled back to `{incident.target or '?'}`.",
    )
    approve = ButtonSpec(
        "Approve rollback",
        "approve",
        style="primary",
        confirm=(
            "Approve the production rollback?",
            f"{incident.app} will be rolled back to {incident.target or '?'} on every host.",
            "Approve",
        ),
    )
    return GateView(
        question=question,
        facts=[_versions(incident), _labelled("Reason:", incident.reason or "(none given)")],
        buttons=[approve, _abort_button(incident)],
    )


def restore_options(facts: Facts) -> list[str]:
    """At most 3 backups to offer: the default first, and always the bot's own backup."""
    own = facts.db.backup.path if facts.db.backup else ""
    listed = [b.path for b in facts.db.backups]
    ordered: list[str] = []
    for path in (facts.db.restore_default, own, *listed):
        if path and path not in ordered:
            ordered.append(path)
    if own and own in ordered[3:]:
        ordered.remove(own)
        ordered.insert(2, own)
    return ordered[:3]


def _db_facts(incident: Incident) -> list[Paragraph]:
    db = incident.facts.db
    facts: list[Paragraph] = []
    if db.backup is not None:
        facts.append(
            _labelled(
                "Backup taken:",
                f"`{truncate(db.backup.name or db.backup.path, 300)}` · "
                f"{units.size(db.backup.size)} · {db.backup.time or '?'}",
            )
        )
    else:
        facts.append(_labelled("Backup taken:", "none recorded"))
    migrations = incident.facts.database.migrations
    if migrations:
        facts.append(_labelled("Migrations to undo:", str(len(migrations))))
        facts.extend(para(f"    {migration_line(m)}") for m in migrations[:8])
    if db.recommended:
        facts.append(_labelled("Recommended:", db.recommended))
    return facts


def _db_warning(incident: Incident) -> Paragraph | None:
    db = incident.facts.db
    if db.risk:
        return para(f"⚠️ {truncate(db.risk, 1_500)}")
    if db.irreversible:
        what = ", ".join(db.irreversible_revisions) or "a migration"
        return para(
            "⚠️ ",
            Emphasis("Irreversible:"),
            f" {truncate(what, 500)} cannot be downgraded without losing data. "
            "Restoring a backup is the safe way back.",
        )
    return None


def _db_buttons(incident: Incident) -> list[ButtonSpec]:
    recommended = incident.facts.db.recommended
    prod = incident.production
    buttons = [
        ButtonSpec(
            "Approve downgrade",
            "approve",
            style="primary" if recommended in (None, "", "downgrade") else None,
            confirm=(
                "Approve the database downgrade?",
                f"Runs `alembic downgrade` on {incident.app}'s {incident.environment} database.",
                "Approve",
            )
            if prod
            else None,
        )
    ]
    for i, path in enumerate(restore_options(incident.facts)):
        confirm = (
            "Approve the restore?",
            truncate(
                f"Replaces {incident.app}'s {incident.environment} database with "
                f"{short_name(path)}.",
                300,
            ),
            "Approve",
        )
        buttons.append(
            ButtonSpec(
                truncate(f"Approve restore from {short_name(path)}", BUTTON_MAX),
                "restore",
                option=path,
                style="primary" if i == 0 and recommended == "restore" else None,
                confirm=confirm if prod else None,
            )
        )
    return [*buttons, _abort_button(incident)]


def approve_db_view(incident: Incident) -> GateView:
    db = incident.facts.db
    code: list[tuple[Paragraph, str, Literal["head", "tail"]]] = []
    if db.sql_preview:
        code.append((para(Emphasis("Downgrade SQL preview:")), db.sql_preview, "head"))
    question = para(
        Emphasis(f"Database rollback of `{incident.app}` needs approval."),
        " Downgrade the migrations, or restore a backup.",
    )
    return GateView(
        question=question,
        facts=_db_facts(incident),
        code=code,
        warning=_db_warning(incident),
        buttons=_db_buttons(incident),
    )


def error_of(gate: Gate) -> ErrorInfo:
    return gate.facts.error or ErrorInfo(what="A step failed")


def retry_view(incident: Incident, gate: Gate) -> GateView:
    err = error_of(gate)
    what: list[Inline] = [err.what or "The step failed"]
    if err.channels:
        what += [": ", *said.channels(err.channels)]
    where = f" on `{err.host}`" if err.host else ""
    facts: list[Paragraph] = []
    if err.hint:
        facts.append(_labelled("What to do:", err.hint))
    code: list[tuple[Paragraph, str, Literal["head", "tail"]]] = []
    if err.detail:
        code.append((para(Emphasis("Details:")), err.detail, "tail"))
    buttons = [ButtonSpec("Retry", "retry", style="primary")]
    if gate.step is StepId.DB_ROLLBACK:
        # The runbook's other way back when a downgrade fails: restore from backup.
        facts.append(para(Emphasis("Or restore from a backup"), " (an approver must click):"))
        for path in restore_options(incident.facts):
            label = truncate(f"Approve restore from {short_name(path)}", BUTTON_MAX)
            buttons.append(ButtonSpec(label, "restore", option=path))
    buttons.append(_abort_button(incident))
    question = para("❌ ", Emphasis(SPECS[gate.step].title), " stopped: ", *what, f"{where}.")
    return GateView(question=question, facts=facts, code=code, buttons=buttons)


def gate_view(incident: Incident, gate: Gate) -> GateView:
    """A gate's question and buttons; in a group's one thread, a member's question names its
    app, as its messages do (`said.named`)."""
    view = _gate_view(incident, gate)
    view.question = said.named_question(incident, view.question, gate.kind)
    return view


def _gate_view(incident: Incident, gate: Gate) -> GateView:
    match gate.kind:
        case GateKind.DECISION:
            return decision_view(incident)
        case GateKind.APPROVE_START:
            return approve_start_view(incident)
        case GateKind.APPROVE_DB:
            return approve_db_view(incident)
        case GateKind.RETRY:
            return retry_view(incident, gate)
        case GateKind.GROUP:
            group = incident.group.name if incident.group else "its group"
            waits = para(f"Waits for the other apps of `{group}`.")  # named by `gate_view`
            return GateView(question=waits, buttons=[_abort_button(incident)])
    raise ValueError(gate.kind)  # pragma: no cover


@dataclass(frozen=True)
class OpenQuestion:
    """The question a person must answer now, as the parent shows it: one line and the gate's
    own buttons (the thread's gate message has the details)."""

    gate: Gate
    line: Paragraph
    buttons: list[ButtonSpec]


def open_question(incident: Incident) -> OpenQuestion | None:
    """The incident's open gate, for the parent; None once it is answered or closed, so that the
    parent never shows the buttons of a gate that no longer waits. A group's parent shows every
    member, not one member's gate: none there (each gate is in the group's thread)."""
    gate = incident.gate
    if gate is None or gate.kind is GateKind.GROUP or incident.group is not None:
        return None
    if incident.status not in (Status.WAITING, Status.PAUSED):
        return None
    if gate.token in incident.facts.answered:
        return None
    view = gate_view(incident, gate)
    asked = first_line_of(view.question.parts, 300)
    line = para("❓ ", *asked, " ", Emphasis("Details in the thread."))
    return OpenQuestion(gate=gate, line=line, buttons=view.buttons)


# ---- notices ---------------------------------------------------------------------------------


def _group_notice(
    lead: Incident, phase: Literal["start", "end"], members: Sequence[Incident], thread: str
) -> Paragraph:
    """A release group's notice: every member app, in the group's order, with its version."""
    assert lead.group is not None
    known = {m.app: m for m in members} | ({lead.app: lead} if members else {})
    apps: list[Inline] = []
    for i, name in enumerate(lead.group.apps):
        member = known.get(name)
        target = member.target if member else None
        env = f" ({member.environment})" if member else ""
        state = ""
        if phase == "end" and member is not None:
            state = f", {STATUS_WORDS.get(member.status, str(member.status))}"
        to = target or "the previous version"
        apps += [", " if i else "", Emphasis(name), f"{env} to `{to}`{state}"]
    if phase == "start":
        return para(
            "⏪ Rollback of the release group ",
            Emphasis(lead.group.name),
            " started by ",
            Mention(lead.requested_by),
            f": {lead.reason or 'no reason given'}. Apps, in order: ",
            *apps,
            f".{thread}",
        )
    report = lead.facts.report.path
    report_part = (
        f" Report: `{short_name(report)}` (posted as a file in the thread)." if report else ""
    )
    return para(
        f"{STATUS_MARK.get(lead.status, '')} Rollback of the release group ",
        Emphasis(lead.group.name),
        f" {STATUS_WORDS.get(lead.status, '')} after {duration(lead)}. Apps: ",
        *apps,
        f".{report_part}{thread}",
    )


def notice(
    incident: Incident, phase: Literal["start", "end"], members: Sequence[Incident] = ()
) -> Paragraph:
    """What the stakeholder channels are told, at the start and at the end (pings apart); a
    group's lead tells them of the group: its name and each app with its target version."""
    link = incident.thread.permalink if incident.thread and incident.thread.permalink else ""
    thread = f" Thread: {link}" if link else ""
    if incident.group is not None:
        return _group_notice(incident, phase, members, thread)
    if phase == "start":
        return para(
            "⏪ Rollback of ",
            Emphasis(incident.app),
            f" ({incident.environment}) to `{incident.target or 'the previous version'}` "
            "started by ",
            Mention(incident.requested_by),
            f": {incident.reason or 'no reason given'}.{thread}",
        )
    report = incident.facts.report.path
    report_part = (
        f" Report: `{short_name(report)}` (posted as a file in the thread)." if report else ""
    )
    return para(
        f"{STATUS_MARK.get(incident.status, '')} Rollback of ",
        Emphasis(incident.app),
        f" ({incident.environment}) {STATUS_WORDS.get(incident.status, '')} after "
        f"{duration(incident)}: ",
        *outcome_parts(incident),
        f"{report_part}{thread}",
    )
