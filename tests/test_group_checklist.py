"""The group parent's checklist (pure): each runbook step with a row per app, in the order
things really happen: the downgrade by a shared database's owner that keeps releases runs after
its own redeploy, so the parent shows it after Redeploy, not above it."""

from __future__ import annotations

from bot.views.incident import checklist_lines
from bot.workflow.group import Downgrade, step_order
from bot.workflow.messages import Message
from bot.workflow.model import GroupRef, MemberRow, StepId, StepRecord, StepStatus
from bot.workflow.render_text import plain
from bot.workflow.steps import DB_STEPS, ORDER
from tests.fakes import make_incident

SHARED = "shared database `shopdb`: downgraded once, by `api`"


def _row(app: str, order: list[StepId], status: StepStatus, skip: bool = False) -> MemberRow:
    steps = [
        StepRecord(id=s, status=StepStatus.SKIPPED, summary=SHARED)
        if skip and s in DB_STEPS
        else StepRecord(id=s, status=status, summary=f"{app} {s.value}")
        for s in order
    ]
    return MemberRow(app=app, incident=app[:4], steps=steps)


def _lines(*rows: MemberRow) -> list[str]:
    group = GroupRef(
        name="shop", lead="stor", members=[r.incident for r in rows], apps=[r.app for r in rows],
        rows=list(rows),
    )  # fmt: skip
    lead = make_incident(id="stor", app="storefront", group=group)
    return [plain(Message((p,))) for p in checklist_lines(lead)]


def test_the_owner_that_keeps_releases_shows_its_downgrade_after_redeploy() -> None:
    down = Downgrade("shopdb", "api", ("storefront", "api"), ("storefront", "api"))
    lines = _lines(
        _row("storefront", list(ORDER), StepStatus.SUCCEEDED, skip=True),
        _row("api", step_order(ORDER, down), StepStatus.PENDING),
    )
    redeploy = lines.index("Roll back database — runs after Redeploy previous version")
    # One database section, after every redeploy row, before Verify: api's downgrade and the
    # storefront's skipped row beside it.
    assert "Roll back database" not in lines
    assert lines[redeploy - 3 : redeploy] == [
        "Redeploy previous version",
        "      ✅ `storefront` — storefront redeploy",
        "      ⬜ `api` — api redeploy",
    ]
    assert lines[redeploy + 1 : redeploy + 4] == [
        f"      ➖ `storefront` — {SHARED}",
        "      ⬜ `api` — api db_rollback",
        "Verify rollback",
    ]
    # The backup is taken before the redeploy: it stays where the runbook puts it.
    backup = lines.index("Back up database, preview downgrade")
    assert backup < lines.index("Redeploy previous version")
    assert lines[backup + 2] == "      ⬜ `api` — api db_prepare"


def test_a_group_in_the_runbook_order_is_shown_as_before() -> None:
    lines = _lines(
        _row("storefront", list(ORDER), StepStatus.SUCCEEDED, skip=True),
        _row("api", list(ORDER), StepStatus.SUCCEEDED),
    )
    assert [line for line in lines if not line.startswith(" ")] == [
        "Prerequisites", "Assess the situation", "Decide: roll back or fix forward",
        "Roll back code", "Back up database, preview downgrade", "Roll back database",
        "Redeploy previous version", "Verify rollback", "Monitor", "Incident report",
    ]  # fmt: skip
    at = lines.index("Roll back database")
    assert lines[at + 2] == "      ✅ `api` — api db_rollback"
    assert lines[at + 3] == "Redeploy previous version"
