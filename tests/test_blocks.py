"""Block Kit rendering: pure, checked against the fake's copy of Slack's rules."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.fronts.slack import blocks, mrkdwn
from bot.fronts.slack import text as t
from bot.fronts.slack.ids import Action, ButtonValue
from bot.fronts.terminal.notifier import TerminalNotifier
from bot.workflow import said
from bot.workflow.facts import AnswerFact, Facts
from bot.workflow.machine import new_steps
from bot.workflow.messages import Emphasis, message
from bot.workflow.model import (
    Criterion,
    ErrorInfo,
    Gate,
    GateKind,
    HostResult,
    Incident,
    Status,
    StepId,
    StepStatus,
    ThreadRef,
)
from tests.slack_fake import all_text, buttons, validate_blocks

T0 = datetime(2024, 11, 25, 3, 0, tzinfo=UTC)


def incident(**facts: Any) -> Incident:
    inc = Incident(
        id="abc123",
        app="myapp",
        environment="production",
        requested_version="v1.3.2",
        reason="checkout returns 500",
        requested_by="U0CAROL",
        steps=new_steps(),
        created_at=T0,
        updated_at=T0 + timedelta(minutes=12),
        thread=ThreadRef(channel="C0INCIDENT", ts="1.000100", permalink="https://x/p1"),
    )
    found: dict[str, Any] = {"assess": {"deployed": "v1.4.0", "target": "v1.3.2"}}
    for slot, values in facts.items():  # slot -> that step's facts, e.g. assess={...}
        found.setdefault(slot, {}).update(values)
    inc.facts = Facts.model_validate(found)
    return inc


def gate(kind: GateKind, step: StepId = StepId.DECIDE, **facts: Any) -> Gate:
    return Gate(kind=kind, step=step, token="tok123", facts=facts)


def check(msg_blocks: list[dict[str, Any]]) -> None:
    assert validate_blocks(msg_blocks) == []
    assert len(msg_blocks) <= 50
    for b in msg_blocks:
        if b["type"] == "section" and "text" in b:
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150


HUGE_FACTS: dict[str, Any] = {
    "assess": {
        "commits": [
            {"sha": f"{i:040x}", "subject": f"change {i} " + "x" * 300} for i in range(500)
        ],
        "commit_count": 500,
        "migrations": [
            {"revision": f"f00d{i:08d}", "down_revision": f"a1b2{i:08d}", "message": "add column"}
            for i in range(60)
        ],
        "code_method_recommended": "tag",
        "code_method_reason": "the merge commit cannot be reverted cleanly " * 50,
    },
    "db": {
        "backup": {"path": "/var/backups/mydb-rewind-abc123.sql", "size": 123456, "time": "03:05"},
        "sql_preview": "ALTER TABLE orders DROP COLUMN coupon;\n" * 2000,
        "irreversible": True,
        "irreversible_revisions": ["e5f6a1b2c3d4"],
        "recommended": "restore",
        "backups": [{"path": f"/var/backups/mydb-2024-11-{d:02d}.sql"} for d in range(1, 20)],
        "restore_default": "/var/backups/mydb-2024-11-19.sql",
    },
    "monitor": {
        "rounds": 5,
        "availability": 99.5,
        "error_count": 30,
        "urls": [
            {"url": f"https://myapp.com/{i}", "availability": 99.5, "p50_ms": 12.3, "p95_ms": 80}
            for i in range(30)
        ],
    },
}

ROUND_TRIP = [
    (GateKind.DECISION, ["Roll back", "Fix forward", "Abort"]),
    (GateKind.APPROVE_START, ["Approve", "Abort"]),
    (GateKind.APPROVE_DB, ["Approve", "Approve restore from", "Abort"]),
    (GateKind.RETRY, ["Retry", "Abort"]),
]


@pytest.mark.parametrize(("kind", "words"), ROUND_TRIP)
@pytest.mark.parametrize("facts", [{}, HUGE_FACTS], ids=["plain", "huge"])
def test_every_gate_renders_buttons_that_parse_back(
    kind: GateKind, words: list[str], facts: dict[str, Any]
) -> None:
    inc = incident(**facts)
    huge = ErrorInfo(what="pip install failed", host="web1", hint="Fix it", detail="E" * 50_000)
    g = gate(kind, StepId.REDEPLOY, error=huge.model_dump())
    text, msg = blocks.gate(inc, g, ping="<@U0ALICE>")
    check(msg)
    assert text
    labels = [b.text for b in buttons({"blocks": msg})]
    for word in words:
        if word == "Approve restore from" and not facts:
            continue  # no backup known: only the downgrade is offered
        assert any(word in label for label in labels), (word, labels)
    for b in buttons({"blocks": msg}):
        assert Action(b.action_id)
        value = ButtonValue.parse(b.value or "")
        assert value is not None and value.i == "abc123" and value.t == "tok123"
        assert b.block_id.startswith("gate-tok123")
    block_ids = [b["block_id"] for b in msg if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    # The minimal fallback keeps the same buttons.
    _, minimal = blocks.gate_minimal(inc, g)
    check(minimal)
    assert [b.text for b in buttons({"blocks": minimal})] == labels


def test_approve_db_restore_options() -> None:
    inc = incident(**HUGE_FACTS)
    _, msg = blocks.gate(inc, gate(GateKind.APPROVE_DB, StepId.DB_ROLLBACK))
    restores = [b for b in buttons({"blocks": msg}) if b.action_id == Action.RESTORE]
    options = [ButtonValue.parse(b.value or "").o for b in restores]  # type: ignore[union-attr]
    assert len(restores) == 3
    assert options[0] == "/var/backups/mydb-2024-11-19.sql"  # the default first
    assert "/var/backups/mydb-rewind-abc123.sql" in options  # always the bot's own backup
    text = "\n".join(all_text({"blocks": msg}).splitlines())
    assert "mydb-rewind-abc123.sql" in text and "120.6 KiB" in text
    assert "Irreversible" in text and "ALTER TABLE orders" in text
    # production: approving a DB change asks for confirmation; Abort always does
    approve = next(b for b in _raw_buttons(msg) if b["action_id"] == Action.APPROVE)
    assert approve["confirm"]["confirm"]["text"] == "Approve"
    abort = next(b for b in _raw_buttons(msg) if b["action_id"] == Action.ABORT)
    assert abort["style"] == "danger" and abort["confirm"]


def _raw_buttons(msg: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in msg if b["type"] == "actions" for e in b["elements"]]


def test_decision_facts() -> None:
    inc = incident(
        assess={
            "commits": [{"sha": c * 40, "subject": c} for c in "abc"],
            "commit_count": 3,
            "migrations": [
                {"revision": "f00d1234", "down_revision": "a1b2c3d4", "message": "add column"}
            ],
            "code_method_recommended": "revert",
            "code_method_reason": "one merge commit",
        }
    )
    _, msg = blocks.gate(inc, gate(GateKind.DECISION))
    text = all_text({"blocks": msg})
    assert "v1.4.0" in text and "v1.3.2" in text
    assert "Commits undone:* 3" in text
    assert "f00d → a1b2: add column" in text
    assert "revert" in text and "one merge commit" in text
    styles = {b.text: b.style for b in buttons({"blocks": msg})}
    assert styles["Roll back to v1.3.2"] == "primary" and styles["Abort"] == "danger"


def test_retry_shows_error_in_plain_words_and_tail_of_detail() -> None:
    err = ErrorInfo(what="restart failed", host="web2", hint="Check the unit", detail="x\n" * 5000)
    err.detail += "THE LAST LINE"
    _, msg = blocks.gate(incident(), gate(GateKind.RETRY, StepId.REDEPLOY, error=err.model_dump()))
    check(msg)
    text = all_text({"blocks": msg})
    assert "restart failed on `web2`" in text and "Check the unit" in text
    assert "THE LAST LINE" in text


def test_parent_checklist_criteria_monitor_and_limits() -> None:
    inc = incident(**HUGE_FACTS)
    inc.step(StepId.PREREQUISITES).status = StepStatus.SUCCEEDED
    rec = inc.step(StepId.REDEPLOY)
    rec.status = StepStatus.FAILED
    rec.summary = "web2 did not come back"
    for i in range(200):
        rec.hosts[f"web{i}"] = HostResult(host=f"web{i}", ok=i % 2 == 0, summary="s" * 500)
    inc.criteria[Criterion.DEPLOYED] = True
    inc.criteria[Criterion.HEALTH] = False
    text, msg = blocks.parent(inc)
    check(msg)
    assert "myapp" in text and "abc123" in text
    assert msg[0]["type"] == "header" and "Rollback myapp → v1.3.2" in msg[0]["text"]["text"]
    body = all_text({"blocks": msg})
    assert "✅ *Prerequisites*" in body and "❌ *Redeploy previous version*" in body
    assert "✅ `web0`" in body and "❌ `web1`" in body
    assert "✅ Previous version deployed" in body and "❌ Health checks passing" in body
    assert "availability 99.5%" in body and "p95 80 ms" in body
    assert "<@U0CAROL>" in body


@pytest.mark.parametrize(("kind", "words"), ROUND_TRIP)
def test_parent_shows_an_open_gates_buttons_within_limits_and_none_once_closed(
    kind: GateKind, words: list[str]
) -> None:
    inc = incident(**HUGE_FACTS)
    for i in range(200):  # a long checklist: the buttons are never the part cut
        inc.step(StepId.REDEPLOY).hosts[f"web{i}"] = HostResult(
            host=f"web{i}", ok=True, summary="s" * 500
        )
    inc.gate = gate(kind, StepId.DB_ROLLBACK, error={"what": "downgrade failed"})
    inc.status = Status.PAUSED if kind is GateKind.RETRY else Status.WAITING
    _, msg = blocks.parent(inc)
    check(msg)
    _, thread = blocks.gate(inc, inc.gate)
    shown = [(b.action_id, b.value, b.text) for b in buttons({"blocks": msg})]
    assert shown == [(b.action_id, b.value, b.text) for b in buttons({"blocks": thread})]
    assert all(b.block_id.startswith("ask-tok123") for b in buttons({"blocks": msg}))
    body = all_text({"blocks": msg})
    assert "❓" in body and "Details in the thread" in body and "Runbook checklist" in body
    # Answered, closed, or a group's parent: no buttons.
    answered = inc.model_copy(deep=True)
    answered.facts.answered["tok123"] = AnswerFact(choice="retry", by="U0CAROL")
    closed = inc.model_copy(update={"status": Status.ABORTED})
    gone = inc.model_copy(update={"gate": None, "status": Status.RUNNING})
    for after in (answered, closed, gone):
        _, msg = blocks.parent(after)
        assert buttons({"blocks": msg}) == [] and "Details in the thread" not in str(msg)


def test_monitor_step_shape_and_real_commit_facts() -> None:
    monitor = {
        "elapsed": 300.0,
        "duration": 900.0,
        "done": False,
        "availability": 99.5,
        "error_count": 2,
        "errors": {"web1": 2, "web2": 0},
        "alerts": 1,
        "urls": [
            {"url": "https://myapp.com/healthz", "host": None, "probes": 10, "ok": 10,
             "availability": 100.0, "p50_ms": 12.5, "p95_ms": 40.0, "streak": 0, "last": ""},
            {"url": "http://web2:8000/", "host": "web2", "probes": 10, "ok": 8,
             "availability": 80.0, "p50_ms": None, "p95_ms": None, "streak": 2, "last": "503"},
        ],
    }  # fmt: skip
    commits = [{"sha": "f" * 40, "short": "fffffff", "subject": "Break checkout", "merge": False}]
    inc = incident(monitor=monitor, assess={"commits": commits, "commit_count": 42})
    body = all_text({"blocks": blocks.parent(inc)[1]})
    assert "Overall (5 min 00 s of 15 min 00 s, so far): availability 99.5% · errors 2" in body
    assert "`https://myapp.com/healthz` — availability 100% · p50 12.5 ms · p95 40 ms" in body
    assert "(web2) — availability 80%" in body and "failing ×2: 503" in body
    assert "✅ passed" not in body and "CPU" not in body  # no signals set: none shown
    decision = all_text({"blocks": blocks.gate(inc, gate(GateKind.DECISION))[1]})
    assert "Commits undone:* 42" in decision and "`fffffff` Break checkout" in decision
    assert "… and 41 more" in decision


SIGNALS = {
    "rounds": 3, "elapsed": 30.0, "duration": 60.0, "signal_streak": 2,
    "signals": [
        {"name": "checkout error rate", "provider": "prometheus", "verdict": "failed",
         "value": 0.2, "before": 0.001, "threshold": "max 0.01",
         "said": "checkout error rate 0.2 (before the bad deploy 0.001; max 0.01)"},
        {"name": "p95 latency", "provider": "datadog", "verdict": "inconclusive",
         "said": "p95 latency no value (max 300 ms): no data: the query returned no series"},
    ],
    "resources": [{"host": "web1", "verdict": "passed", "cpu": 12.0, "memory": 40.25,
                   "disk": 61.0, "said": "resources on web1 61 % (max 95 %): disk"}],
}  # fmt: skip
SHOWN = [
    "Overall (30 s of 1 min 00 s, so far): errors 0 · ❌ signals failing ×2",
    "• ❌ failed: checkout error rate 0.2 (before the bad deploy 0.001; max 0.01)",
    "• ❔ inconclusive: p95 latency no value (max 300 ms): no data: the query returned no series",
    "• ✅ web1: CPU 12 %, memory 40.2 %, disk 61 %",
]


async def test_parent_live_figures_show_each_signal_in_slack_and_at_the_terminal(
    tmp_path: Path,
) -> None:
    inc = incident(monitor=SIGNALS)
    body = all_text({"blocks": blocks.parent(inc)[1]})
    for line in SHOWN:
        assert line in body, body
    out = io.StringIO()
    await TerminalNotifier(out, files_dir=tmp_path).update_parent(inc)
    printed = out.getvalue()
    for line in SHOWN:
        assert f"│ {line}" in printed, printed


def test_parent_when_finished_names_unmet_criteria_and_outcome() -> None:
    inc = incident()
    inc.status = Status.ABORTED
    inc.finished_at = T0 + timedelta(minutes=7)
    inc.outcome, inc.ended_by = "Rolled back: nothing.", "U0BOB"
    inc.criteria[Criterion.DEPLOYED] = True
    _, msg = blocks.parent(inc)
    body = all_text({"blocks": msg})
    assert "Not complete — unmet: Database rolled back" in body
    assert "Aborted by <@U0BOB>" in body and "7 min" in body


def test_answered_removes_buttons() -> None:
    inc = incident()
    answer = said.answered(AnswerFact(choice="approve", by="U0ALICE"), inc.updated_at)
    out = blocks.answered(inc, gate(GateKind.APPROVE_START), mrkdwn.render(answer))
    check(out)
    assert buttons({"blocks": out}) == []
    assert "✅ Approved by <@U0ALICE> at 03:12 UTC" in all_text({"blocks": out})
    _, posted = blocks.gate(inc, gate(GateKind.DECISION))
    again = blocks.answered_from_message(posted, "➡️ Fix forward chosen by <@U0BOB>")
    check(again)
    assert buttons({"blocks": again}) == [] and "Fix forward chosen" in all_text({"blocks": again})


def test_status_home_help_notice() -> None:
    incidents = [incident() for _ in range(3)]
    check(blocks.status(incidents))
    assert "abc123" in blocks.incident_line(incidents[0])
    assert "https://x/p1" in blocks.incident_list(incidents)
    assert "Database rolled back" in blocks.incident_status(incidents[0])
    view = blocks.home(incidents)
    assert view["type"] == "home" and validate_blocks(view["blocks"], max_blocks=100) == []
    json.dumps(view)
    for sub in ("status", "list", "cancel", "unfreeze", "help"):
        assert f"/rollback {sub}" in blocks.help_text()
    _text, msg = blocks.notice(incidents[0], "start", ["<!subteam^S0ONCALL>", "U0DAVE"])
    check(msg)
    body = all_text({"blocks": msg})
    assert "started by <@U0CAROL>" in body and "checkout returns 500" in body
    assert "https://x/p1" in body and "<!subteam^S0ONCALL>" in body and "<@U0DAVE>" in body
    done = incidents[0]
    done.status, done.finished_at, done.outcome = Status.COMPLETED, T0 + timedelta(hours=1), "ok"
    _, end = blocks.notice(done, "end")
    assert "1 h 00 min" in all_text({"blocks": end})


def test_output_blocks_fit_or_refuse() -> None:
    small = blocks.output([("Redeploy", "web1", [f"line {i} <b>" for i in range(100)])])
    assert small is not None
    check(small)
    assert "line 99 &lt;b&gt;" in all_text({"blocks": small})
    assert blocks.output([("Redeploy", "web1", ["y" * 80] * 10_000)]) is None
    assert blocks.output([("Redeploy", "web1", ["z" * 5000])]) is None


def test_pack_and_truncate() -> None:
    assert t.truncate("abcdef", 4) == "abc…"
    chunks = t.pack(["a" * 2000, "b" * 2000, "c" * 5000])
    assert all(len(c) <= 3000 for c in chunks) and len(chunks) == 3


async def test_terminal_notifier_prints_the_thread(tmp_path: Path) -> None:
    out = io.StringIO()
    term = TerminalNotifier(out, files_dir=tmp_path)
    inc = incident(assess={"commits": [{"sha": "a" * 40}], "commit_count": 1})
    await term.open_thread(inc)
    await term.update_parent(inc)  # unchanged: not printed again
    assert out.getvalue().count("Runbook checklist") == 1
    await term.output(inc, StepId.REDEPLOY, "web1", "restarting\n")
    await term.ask(inc, gate(GateKind.DECISION))
    await term.say(inc, message(Emphasis("Roll back"), " chosen"))
    await term.upload(inc, "report.md", "a\nb\nc\n", "Report")
    await term.resolve_gate(inc, "tok123", AnswerFact(choice="Roll back", by="U0CAROL"))
    printed = out.getvalue()
    assert "  [web1] restarting" in printed
    assert "1) Roll back to v1.3.2  2) Fix forward  3) Abort" in printed
    assert "  ↳ Roll back chosen" in printed
    assert "📎 report.md (3 lines)" in printed
    assert (tmp_path / "report.md").read_text() == "a\nb\nc\n"
    assert "Roll back chosen by @U0CAROL" in printed
    assert "<@" not in printed


async def test_terminal_notifier_names_the_app_a_group_members_answer_is_for(
    tmp_path: Path,
) -> None:
    from bot.workflow.model import GroupRef

    out = io.StringIO()
    term = TerminalNotifier(out, files_dir=tmp_path)
    member = incident()
    member.group = GroupRef(name="shop", lead="a1", members=["a1", member.id],
                            apps=["storefront", member.app])  # fmt: skip
    await term.resolve_gate(member, "tok123", AnswerFact(choice="approve", by="U0ALICE"))
    assert f"{member.app} · ✅ Approved by @U0ALICE" in out.getvalue()
