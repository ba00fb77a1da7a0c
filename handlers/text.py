"""Pure text helpers shared by the Slack blocks and the terminal: what the thread says.

Everything here reads an `Incident` (its typed `facts`, one model per step) and returns strings
in Slack's mrkdwn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal

from bot import units
from bot.command import HELP
from bot.messages import message
from bot.report_md import duration as fmt_duration
from bot.workflow import said
from bot.workflow.facts import CommitFact, Facts, MigrationFact, MonitorFacts, UrlFigures
from bot.workflow.model import (
    Criterion,
    ErrorInfo,
    Gate,
    GateKind,
    Incident,
    Status,
    StepId,
    StepRecord,
    StepStatus,
)
from bot.workflow.steps import SPECS
from handlers import mrkdwn
from handlers.ids import Action

ELLIPSIS = "…"
SECTION_MAX = 3_000
HEADER_MAX = 150
BUTTON_MAX = 75

STEP_EMOJI: dict[StepStatus, str] = {
    StepStatus.PENDING: "⬜",
    StepStatus.RUNNING: "⏳",
    StepStatus.WAITING: "✋",
    StepStatus.SUCCEEDED: "✅",
    StepStatus.FAILED: "❌",
    StepStatus.SKIPPED: "➖",
}

STATUS_EMOJI: dict[Status, str] = {
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


def escape(text: str) -> str:
    """Slack's three control characters, escaped (text stays literal in mrkdwn)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_safe(text: str) -> str:
    """Text that cannot close a ``` code block early."""
    return text.replace("```", "`\u200b``")


def code_block(text: str, limit: int, *, keep: Literal["head", "tail"] = "head") -> str:
    """A ``` block of `text`, whole block at most `limit` characters."""
    body = code_safe(text.strip("\n")) or " "
    room = max(limit - 8, 1)
    body = truncate(body, room) if keep == "head" else truncate_tail(body, room)
    return f"```\n{body}\n```"


def mention(entity: str) -> str:
    """`U123` -> `<@U123>`, `S123` -> `<!subteam^S123>`; already formatted strings as is."""
    entity = entity.strip()
    if not entity or entity.startswith("<"):
        return entity
    if entity.startswith("S"):
        return f"<!subteam^{entity}>"
    return f"<@{entity}>"


def short_rev(rev: Any, n: int = 4) -> str:
    return str(rev)[:n] if rev else "base"


def short_name(path: str) -> str:
    return PurePosixPath(str(path)).name or str(path)


def fmt_time(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_clock(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%H:%M UTC") if dt else ""


def duration(incident: Incident, now: datetime | None = None) -> str:
    end = incident.finished_at or now or datetime.now(UTC)
    return fmt_duration((end - incident.created_at).total_seconds())


def fmt_number(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return str(value)


_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def to_terminal(text: str) -> str:
    """mrkdwn -> what a terminal shows: `<url|label>` -> `label (url)`, `*bold*` -> `bold`."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    return _BOLD.sub(r"\1", text)


def pack(lines: Sequence[str], limit: int = SECTION_MAX) -> list[str]:
    """Lines joined into chunks of at most `limit` characters (a too-long line is cut)."""
    chunks: list[str] = []
    current = ""
    for raw in lines:
        line = truncate(raw, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit and current:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


# ---- the parent message ----------------------------------------------------------------------


def title(incident: Incident) -> str:
    return f"Rollback {incident.app} → {incident.target or 'previous version'}"


def header_text(incident: Incident) -> str:
    return truncate(f"{STATUS_EMOJI.get(incident.status, '')} {title(incident)}", HEADER_MAX)


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


def field_pairs(incident: Incident) -> list[tuple[str, str]]:
    started = fmt_time(incident.created_at)
    return [
        ("App", f"`{incident.app}`"),
        ("Environment", incident.environment),
        (
            "Requested target",
            f"`{incident.requested_version}`"
            if incident.requested_version
            else f"(previous version){' → `' + incident.target + '`' if incident.target else ''}",
        ),
        ("Deployed version", f"`{deployed(incident)}`" if deployed(incident) != "—" else "—"),
        ("Asked by", f"<@{incident.requested_by}>"),
        ("Reason", incident.reason or "(none given)"),
        ("Incident", f"`{incident.id}`"),
        ("Started", started),
    ]


def step_line(incident: Incident, rec: StepRecord) -> str:
    spec = SPECS[rec.id]
    line = f"{STEP_EMOJI.get(rec.status, '⬜')} *{spec.title}*"
    if rec.attempts > 1:
        line += f" (attempt {rec.attempts})"
    if rec.summary:
        line += f" — {first_line(mrkdwn.render(message(*said.summary(incident, rec))))}"
    return truncate(line, 600)


def host_lines(rec: StepRecord) -> list[str]:
    out = []
    for name, result in rec.hosts.items():
        mark = "✅" if result.ok else "❌"
        out.append(
            truncate(f"      {mark} `{result.host or name}`: {first_line(result.summary)}", 300)
        )
    return out


def checklist_lines(incident: Incident) -> list[str]:
    lines: list[str] = []
    for rec in incident.steps:
        lines.append(step_line(incident, rec))
        lines.extend(host_lines(rec))
        if rec.status is StepStatus.RUNNING:
            lines.extend(waiting_lines(incident))
    return lines


def waiting_lines(incident: Incident) -> list[str]:
    """What a running step waits for, and for how long so far (never silent for long)."""
    waits = incident.facts.waiting
    return [truncate(f"      ⏳ {text}", 300) for text in list(waits.values())[:5]]


def criterion_mark(ok: bool | None) -> str:
    return "✅" if ok is True else "❌" if ok is False else "⬜"


def criteria_lines(incident: Incident) -> list[str]:
    return [f"{criterion_mark(incident.criteria.get(c))} {c.value}" for c in Criterion]


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


def _url_line(figures: UrlFigures) -> str:
    host = f" ({figures.host})" if figures.host else ""
    where = f"`{truncate(figures.url, 200)}`{host}"
    tail = ""
    if figures.streak > 0 and figures.last:
        tail = f" · ❌ failing ×{figures.streak}: {truncate(first_line(figures.last), 120)}"
    shown = _figures(figures.availability, None, figures.p50_ms, figures.p95_ms)
    return truncate(f"• {where} — {shown}{tail}", 500)


def monitor_lines(mon: MonitorFacts) -> list[str]:
    """Live figures of the monitor step: the totals, then one line per URL."""
    if not mon.rounds and not mon.urls:
        return []
    state = "done" if mon.done else "so far"
    progress = f" ({fmt_duration(mon.elapsed)} of {fmt_duration(mon.duration)}, {state})"
    totals = _figures(mon.availability, mon.error_count, None, mon.p95_ms)
    lines = [truncate(f"Overall{progress}: {totals}", 500)]
    lines.extend(_url_line(u) for u in mon.urls[:10])
    return lines


def outcome_line(incident: Incident) -> str:
    if incident.status.open:
        return ""
    return (
        f"{STATUS_EMOJI.get(incident.status, '')} *Outcome:* {outcome_words(incident)} "
        f"(took {duration(incident)})"
    )


def outcome_words(incident: Incident) -> str:
    """The outcome in mrkdwn (who ended it is a mention), or the state's words."""
    if incident.outcome or incident.ended_by:
        return mrkdwn.render(said.outcome(incident))
    return STATUS_WORDS.get(incident.status, str(incident.status))


def parent_fallback(incident: Incident) -> str:
    """The notification text of the parent message: the essentials in one line."""
    text = (
        f"{STATUS_EMOJI.get(incident.status, '')} Rollback of {incident.app} "
        f"({incident.environment}) to {incident.target or 'the previous version'} "
        f"requested by <@{incident.requested_by}> — {state_words(incident)}. "
        f"Incident {incident.id}."
    )
    if incident.outcome and not incident.status.open:
        text += f" {first_line(outcome_words(incident))}"
    return truncate(text, 2_000)


def incident_line(incident: Incident) -> str:
    """One line per incident, for `/rollback list`, `status` and the App Home."""
    link = incident.thread.permalink if incident.thread and incident.thread.permalink else ""
    where = f" · <{link}|thread>" if link else ""
    return truncate(
        f"{STATUS_EMOJI.get(incident.status, '')} `{incident.id}` *{incident.app}* → "
        f"`{incident.target or '?'}` ({incident.environment}) — {state_words(incident)}"
        f" · by <@{incident.requested_by}> · {fmt_time(incident.created_at)}{where}",
        1_000,
    )


# ---- gates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ButtonSpec:
    label: str
    action: Action
    option: str = ""
    style: Literal["primary", "danger"] | None = None
    confirm: tuple[str, str, str] | None = None  # title, text, confirm label


@dataclass
class GateView:
    question: str
    facts: list[str] = field(default_factory=list)
    code: list[tuple[str, str, Literal["head", "tail"]]] = field(default_factory=list)
    warning: str = ""
    buttons: list[ButtonSpec] = field(default_factory=list)


def _abort_button(incident: Incident) -> ButtonSpec:
    return ButtonSpec(
        "Abort",
        Action.ABORT,
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


def decision_view(incident: Incident) -> GateView:
    f = incident.facts.assess
    commits, migrations = f.commits, f.migrations
    facts = [f"*Deployed* `{deployed(incident)}` → *target* `{incident.target or '?'}`"]
    count = max(f.commit_count, len(commits))
    facts.append(f"*Commits undone:* {count}")
    facts.extend(f"    {commit_line(c)}" for c in commits[:5])
    if count > len(commits[:5]):
        facts.append(f"    … and {count - len(commits[:5])} more")
    facts.append(f"*Migrations to undo:* {len(migrations)}")
    facts.extend(f"    {migration_line(m)}" for m in migrations[:8])
    if len(migrations) > 8:
        facts.append(f"    … and {len(migrations) - 8} more")
    if f.code_method_recommended:
        reason = f.code_method_reason
        facts.append(
            f"*Recommended:* {f.code_method_recommended}"
            + (f" — {first_line(reason)}" if reason else "")
        )
    return GateView(
        question=(
            f"*Roll back or fix forward?* `{incident.app}` ({incident.environment}). "
            "Roll back if the issue is severe and a fix will take time; fix forward if it is "
            "minor and the fix is quick."
        ),
        facts=facts,
        buttons=[*_roll_back_buttons(incident), ButtonSpec("Fix forward", Action.FIX_FORWARD),
                 _abort_button(incident)],
    )  # fmt: skip


_METHOD_WORDS = {"revert": "revert merges", "tag": "take the tag"}


def _roll_back_buttons(incident: Incident) -> list[ButtonSpec]:
    """One Roll back button, or one per code method when both apply (recommended first)."""
    target = truncate(incident.target or "previous", 40)
    methods = list(incident.facts.assess.code_methods)
    if len(methods) < 2:
        return [ButtonSpec(f"Roll back to {target}", Action.ROLL_BACK, style="primary")]
    best = incident.facts.assess.code_method_recommended or methods[0]
    methods.sort(key=lambda m: m != best)
    return [
        ButtonSpec(
            f"Roll back to {target} ({_METHOD_WORDS[m]})",
            Action.ROLL_BACK,
            option=m,
            style="primary" if m == best else None,
        )
        for m in methods
    ]


def approve_start_view(incident: Incident) -> GateView:
    return GateView(
        question=(
            f"*Production rollback:* an approver other than <@{incident.requested_by}> must "
            f"approve before `{incident.app}` is rolled back to `{incident.target or '?'}`."
        ),
        facts=[
            f"*Deployed* `{deployed(incident)}` → *target* `{incident.target or '?'}`",
            f"*Reason:* {incident.reason or '(none given)'}",
        ],
        buttons=[
            ButtonSpec(
                "Approve rollback",
                Action.APPROVE,
                style="primary",
                confirm=(
                    "Approve the production rollback?",
                    f"{incident.app} will be rolled back to {incident.target or '?'} on every "
                    "host.",
                    "Approve",
                ),
            ),
            _abort_button(incident),
        ],
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


def approve_db_view(incident: Incident) -> GateView:
    db = incident.facts.db
    facts: list[str] = []
    if db.backup is not None:
        facts.append(
            f"*Backup taken:* `{truncate(db.backup.name or db.backup.path, 300)}` · "
            f"{units.size(db.backup.size)} · {db.backup.time or '?'}"
        )
    else:
        facts.append("*Backup taken:* none recorded")
    migrations = incident.facts.database.migrations
    if migrations:
        facts.append(f"*Migrations to undo:* {len(migrations)}")
        facts.extend(f"    {migration_line(m)}" for m in migrations[:8])
    recommended = db.recommended
    if recommended:
        facts.append(f"*Recommended:* {recommended}")
    warning = ""
    if db.risk:
        warning = f"⚠️ {truncate(db.risk, 1_500)}"
    elif db.irreversible:
        what = ", ".join(db.irreversible_revisions) or "a migration"
        warning = (
            f"⚠️ *Irreversible:* {truncate(what, 500)} cannot be downgraded without losing data. "
            "Restoring a backup is the safe way back."
        )
    code: list[tuple[str, str, Literal["head", "tail"]]] = []
    if db.sql_preview:
        code.append(("*Downgrade SQL preview:*", db.sql_preview, "head"))
    prod = incident.production
    buttons = [
        ButtonSpec(
            "Approve downgrade",
            Action.APPROVE,
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
        label = truncate(f"Approve restore from {short_name(path)}", BUTTON_MAX)
        buttons.append(
            ButtonSpec(
                label,
                Action.RESTORE,
                option=path,
                style="primary" if i == 0 and recommended == "restore" else None,
                confirm=(
                    "Approve the restore?",
                    truncate(
                        f"Replaces {incident.app}'s {incident.environment} database with "
                        f"{short_name(path)}.",
                        300,
                    ),
                    "Approve",
                )
                if prod
                else None,
            )
        )
    buttons.append(_abort_button(incident))
    return GateView(
        question=(
            f"*Database rollback of `{incident.app}` needs approval.* Downgrade the migrations, "
            "or restore a backup."
        ),
        facts=facts,
        code=code,
        warning=warning,
        buttons=buttons,
    )


def error_of(gate: Gate) -> ErrorInfo:
    error = gate.facts.get("error")
    if isinstance(error, Mapping):
        return ErrorInfo.model_validate({"what": "A step failed", **error})
    return ErrorInfo(what=str(error or "A step failed"))


def retry_view(incident: Incident, gate: Gate) -> GateView:
    err = error_of(gate)
    what = err.what or "The step failed"
    if err.channels:
        what += ": " + mrkdwn.render(message(*said.channels(err.channels)))
    where = f" on `{err.host}`" if err.host else ""
    facts: list[str] = []
    if err.hint:
        facts.append(f"*What to do:* {err.hint}")
    code: list[tuple[str, str, Literal["head", "tail"]]] = []
    if err.detail:
        code.append(("*Details:*", err.detail, "tail"))
    buttons = [ButtonSpec("Retry", Action.RETRY, style="primary")]
    if gate.step is StepId.DB_ROLLBACK:
        # The runbook's other way back when a downgrade fails: restore from backup.
        facts.append("*Or restore from a backup* (an approver must click):")
        for path in restore_options(incident.facts):
            label = truncate(f"Approve restore from {short_name(path)}", BUTTON_MAX)
            buttons.append(ButtonSpec(label, Action.RESTORE, option=path))
    buttons.append(_abort_button(incident))
    return GateView(
        question=f"❌ *{SPECS[gate.step].title}* stopped: {what}{where}.",
        facts=facts,
        code=code,
        buttons=buttons,
    )


def gate_view(incident: Incident, gate: Gate) -> GateView:
    match gate.kind:
        case GateKind.DECISION:
            return decision_view(incident)
        case GateKind.APPROVE_START:
            return approve_start_view(incident)
        case GateKind.APPROVE_DB:
            return approve_db_view(incident)
        case GateKind.RETRY:
            return retry_view(incident, gate)
    raise ValueError(gate.kind)  # pragma: no cover


def gate_fallback(incident: Incident, gate: Gate, ping: str = "") -> str:
    view = gate_view(incident, gate)
    labels = " / ".join(b.label for b in view.buttons)
    return truncate(f"{ping + ' ' if ping else ''}{view.question} [{labels}]", 2_000)


# ---- notices ---------------------------------------------------------------------------------


def notice_text(
    incident: Incident, phase: Literal["start", "end"], mentions: Sequence[str] = ()
) -> str:
    link = incident.thread.permalink if incident.thread and incident.thread.permalink else ""
    ping = " ".join(mention(m) for m in mentions if m)
    ping = f"{ping} " if ping else ""
    if phase == "start":
        thread = f" Thread: {link}" if link else ""
        return (
            f"{ping}⏪ Rollback of *{incident.app}* ({incident.environment}) to "
            f"`{incident.target or 'the previous version'}` started by "
            f"<@{incident.requested_by}>: {incident.reason or 'no reason given'}.{thread}"
        )
    outcome = outcome_words(incident)
    report = incident.facts.report.path
    report_part = (
        f" Report: `{short_name(report)}` (posted as a file in the thread)." if report else ""
    )
    thread = f" Thread: {link}" if link else ""
    return (
        f"{ping}{STATUS_EMOJI.get(incident.status, '')} Rollback of *{incident.app}* "
        f"({incident.environment}) {STATUS_WORDS.get(incident.status, '')} after "
        f"{duration(incident)}: {outcome}{report_part}{thread}"
    )


def help_text() -> str:
    return mrkdwn.render(HELP)  # one help text, for `/rollback help` and the App Home
