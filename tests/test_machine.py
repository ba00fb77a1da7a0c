"""The pure state machine, with no I/O: every pause, answer and refusal."""

from __future__ import annotations

import pytest

from bot.workflow.facts import AssessFacts, MigrationFact
from bot.workflow.machine import (
    Answer,
    AskGate,
    Begin,
    Cancel,
    Finished,
    Rejected,
    RunStep,
    StepFailed,
    StepInterrupted,
    StepStarted,
    StepSucceeded,
    new_steps,
    transition,
)
from bot.workflow.model import (
    Criterion,
    ErrorInfo,
    GateKind,
    Incident,
    Status,
    StepId,
    StepStatus,
)
from bot.workflow.policy import Actor, Policy

CAROL, ALICE, MALLORY = Actor("U0CAROL"), Actor("U0ALICE"), Actor("U0MALLORY")


def policy(production: bool = True) -> Policy:
    return Policy("myapp", production, frozenset({"U0CAROL"}), frozenset({"U0ALICE", "U0BOB"}))


def incident(production: bool = True) -> Incident:
    return Incident(
        id="abc123",
        app="myapp",
        environment="production" if production else "staging",
        requested_version="v1.4.2",
        reason="checkout 500",
        requested_by="U0CAROL",
        steps=new_steps(),
        lock_token=1,
    )


def run(inc: Incident, step: StepId, pol: Policy, **succ: object) -> Incident:
    inc, _ = transition(inc, StepStarted(step, f"run-{step}", "w1"), pol)
    inc, _ = transition(inc, StepSucceeded(step, f"run-{step}", "ok", **succ), pol)  # type: ignore[arg-type]
    return inc


def answer(inc: Incident, actor: Actor, choice: str, pol: Policy) -> Incident:
    assert inc.gate is not None
    inc, _ = transition(inc, Answer(inc.gate.token, actor, choice), pol)
    return inc


def code_rolled_back(pol: Policy) -> Incident:
    """A staging incident with no migrations, decided (roll back) and past the code step."""
    inc, _ = transition(incident(False), Begin(), pol)
    inc = run(inc, StepId.PREREQUISITES, pol)
    inc = run(inc, StepId.ASSESS, pol, skip=(StepId.DB_PREPARE, StepId.DB_ROLLBACK))
    inc = answer(inc, CAROL, "roll_back", pol)
    return run(inc, StepId.CODE, pol)


def test_happy_path_in_production_needs_decision_start_approval_and_db_approval() -> None:
    pol = policy()
    inc, effects = transition(incident(), Begin(), pol)
    assert effects == [RunStep(StepId.PREREQUISITES, 1)]
    inc = run(inc, StepId.PREREQUISITES, pol)
    inc = run(inc, StepId.ASSESS, pol, facts=AssessFacts(migrations=[MigrationFact(revision="c3")]))
    assert inc.status is Status.WAITING and inc.gate and inc.gate.kind is GateKind.DECISION
    inc = answer(inc, CAROL, "roll_back", pol)
    assert inc.gate and inc.gate.kind is GateKind.APPROVE_START
    with pytest.raises(Rejected, match="four-eyes"):
        answer(inc, Actor("U0CAROL", frozenset({"U0ALICE"})), "approve", pol)
    inc = answer(inc, ALICE, "approve", pol)
    inc = run(inc, StepId.CODE, pol)
    inc = run(inc, StepId.DB_PREPARE, pol)
    assert inc.gate and inc.gate.kind is GateKind.APPROVE_DB
    inc = answer(inc, ALICE, "approve", pol)
    assert inc.db_method == "downgrade"
    inc = run(inc, StepId.DB_ROLLBACK, pol, criteria={Criterion.DATABASE: True})
    inc = run(inc, StepId.REDEPLOY, pol, criteria={Criterion.DEPLOYED: True})
    crit = {Criterion.HEALTH: True, Criterion.LOGS: True, Criterion.SMOKE: True}
    inc = run(inc, StepId.VERIFY, pol, criteria=crit)
    inc = run(inc, StepId.MONITOR, pol, criteria={Criterion.MONITORED: True})
    inc, effects = transition(inc, StepStarted(StepId.REPORT, "r", "w1"), pol)
    inc, effects = transition(
        inc, StepSucceeded(StepId.REPORT, "r", "ok", criteria={Criterion.REPORT: True}), pol
    )
    assert inc.status is Status.COMPLETED
    assert Finished(Status.COMPLETED) in effects
    assert inc.unmet_criteria() == []


def test_never_complete_while_a_criterion_is_unmet() -> None:
    pol = policy(production=False)
    inc, _ = transition(incident(False), Begin(), pol)
    inc = run(inc, StepId.PREREQUISITES, pol)
    inc = run(inc, StepId.ASSESS, pol, skip=(StepId.DB_PREPARE, StepId.DB_ROLLBACK),
              criteria={Criterion.DATABASE: True})  # fmt: skip
    inc = answer(inc, CAROL, "roll_back", pol)
    for step in (StepId.CODE, StepId.REDEPLOY, StepId.VERIFY, StepId.MONITOR, StepId.REPORT):
        inc = run(inc, step, pol)
    assert inc.status is Status.PAUSED
    error = inc.gate.facts.error if inc.gate else None
    assert error and "Completion criteria not met" in error.what


def test_fix_forward_skips_the_rollback_and_keeps_the_report() -> None:
    pol = policy()
    inc, _ = transition(incident(), Begin(), pol)
    inc = run(inc, StepId.PREREQUISITES, pol)
    inc = run(inc, StepId.ASSESS, pol)
    inc = answer(inc, CAROL, "fix_forward", pol)
    assert inc.current_step() is not None and inc.current_step().id is StepId.REPORT  # type: ignore[union-attr]
    for step in (StepId.CODE, StepId.DB_ROLLBACK, StepId.REDEPLOY, StepId.MONITOR):
        assert inc.step(step).status is StepStatus.SKIPPED
    inc = run(inc, StepId.REPORT, pol)
    assert inc.status is Status.FIXED_FORWARD


def test_double_click_and_stale_buttons_change_nothing() -> None:
    pol = policy()
    inc, _ = transition(incident(), Begin(), pol)
    inc = run(inc, StepId.PREREQUISITES, pol)
    inc = run(inc, StepId.ASSESS, pol)
    assert inc.gate
    token = inc.gate.token
    inc = answer(inc, CAROL, "roll_back", pol)
    with pytest.raises(Rejected, match="Already answered: Roll back by @U0CAROL"):
        transition(inc, Answer(token, CAROL, "roll_back"), pol)
    with pytest.raises(Rejected, match="earlier stage"):
        transition(inc, Answer("nope", ALICE, "approve"), pol)


def test_unauthorized_click_is_refused() -> None:
    pol = policy()
    inc, _ = transition(incident(), Begin(), pol)
    inc = run(inc, StepId.PREREQUISITES, pol)
    inc = run(inc, StepId.ASSESS, pol)
    with pytest.raises(Rejected, match="not an operator or approver"):
        answer(inc, MALLORY, "roll_back", pol)
    with pytest.raises(Rejected, match="not an operator or approver"):
        answer(inc, MALLORY, "abort", pol)


def test_failure_pauses_with_retry_and_abort_says_what_was_rolled_back() -> None:
    pol = policy(production=False)
    inc = code_rolled_back(pol)
    inc, _ = transition(inc, StepStarted(StepId.REDEPLOY, "x", "w1"), pol)
    err = ErrorInfo(what="restart failed", host="web2", hint="see output")
    inc, effects = transition(inc, StepFailed(StepId.REDEPLOY, "x", err), pol)
    assert inc.status is Status.PAUSED and isinstance(effects[0], AskGate)
    retry = answer(inc, CAROL, "retry", pol)
    assert retry.status is Status.RUNNING
    aborted = answer(inc, CAROL, "abort", pol)
    assert aborted.status is Status.ABORTED
    assert "Rolled back: Roll back code." in aborted.outcome
    assert "Redeploy previous version" in aborted.outcome


def test_results_of_a_presumed_dead_run_are_ignored() -> None:
    pol = policy()
    inc, _ = transition(incident(), Begin(), pol)
    inc, _ = transition(inc, StepStarted(StepId.PREREQUISITES, "old", "w1"), pol)
    with pytest.raises(Rejected, match="already running"):  # a second start of the same run
        transition(inc, StepStarted(StepId.PREREQUISITES, "twin", "w3"), pol)
    inc, _ = transition(inc, StepStarted(StepId.PREREQUISITES, "new", "w2", resumes="old"), pol)
    with pytest.raises(Rejected, match="stale"):
        transition(inc, StepSucceeded(StepId.PREREQUISITES, "old", "late"), pol)


def test_interrupted_unrepeatable_step_pauses_for_a_person() -> None:
    pol = policy()
    inc, _ = transition(incident(), Begin(), pol)
    inc, _ = transition(inc, StepStarted(StepId.DB_ROLLBACK, "r", "w1"), pol)
    inc, _ = transition(inc, StepInterrupted(StepId.DB_ROLLBACK, "w1"), pol)
    assert inc.status is Status.PAUSED
    error = inc.gate.facts.error if inc.gate else None
    assert error and "not safe to repeat" in error.hint


def test_cancel_needs_an_operator_and_ends_the_incident() -> None:
    pol = policy()
    inc, _ = transition(incident(), Begin(), pol)
    with pytest.raises(Rejected):
        transition(inc, Cancel(MALLORY), pol)
    inc, effects = transition(inc, Cancel(CAROL), pol)
    assert inc.status is Status.CANCELLED and Finished(Status.CANCELLED) in effects
    with pytest.raises(Rejected, match="already cancelled"):
        transition(inc, Cancel(CAROL), pol)


def test_a_failed_downgrade_offers_restore_to_an_approver() -> None:
    pol = policy(production=False)
    inc, _ = transition(incident(False), Begin(), pol)
    inc = inc.model_copy(update={"decision": None})
    inc, _ = transition(inc, StepStarted(StepId.DB_ROLLBACK, "d", "w1"), pol)
    err = ErrorInfo(what="alembic downgrade failed", host="web1")
    inc, _ = transition(inc, StepFailed(StepId.DB_ROLLBACK, "d", err), pol)
    assert inc.gate is not None
    token = inc.gate.token
    with pytest.raises(Rejected, match="Only an approver"):
        transition(inc, Answer(token, CAROL, "restore", "/b/old.sql"), pol)
    restored, _ = transition(inc, Answer(token, ALICE, "restore", "/b/old.sql"), pol)
    assert restored.db_method == "restore"
    assert restored.facts.restore_backup == "/b/old.sql"
    assert restored.step(StepId.DB_ROLLBACK).status is StepStatus.PENDING
    with pytest.raises(Rejected, match="not an answer"):
        transition(inc, Answer(token, ALICE, "fix_forward"), pol)


def test_retrying_a_database_step_is_a_database_change() -> None:
    pol = policy()
    inc, _ = transition(incident(), Begin(), pol)
    inc, _ = transition(inc, StepStarted(StepId.DB_ROLLBACK, "d", "w1"), pol)
    err = ErrorInfo(what="alembic downgrade failed", host="web1")
    inc, _ = transition(inc, StepFailed(StepId.DB_ROLLBACK, "d", err), pol)
    with pytest.raises(Rejected, match="Only an approver"):
        answer(inc, CAROL, "retry", pol)
    with pytest.raises(Rejected, match="four-eyes"):
        answer(inc, Actor("U0CAROL", frozenset({"U0ALICE"})), "retry", pol)
    assert answer(inc, ALICE, "retry", pol).status is Status.RUNNING


def test_abort_says_how_to_undo_what_was_done() -> None:
    pol = policy(production=False)
    inc = code_rolled_back(pol)
    inc, _ = transition(inc, Cancel(CAROL), pol)
    assert "To undo: Roll back code: delete the hotfix branch on origin" in inc.outcome
