"""The state machine: `transition(incident, event) -> (incident, effects)`, no I/O.

Every answer to a gate carries the gate's token, so a double click, a Slack retry or a stale
button changes nothing the second time. Step results carry the run id that started them, so a
result from a worker that was presumed dead is ignored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from bot.workflow import said
from bot.workflow.facts import AnswerFact, StepFacts
from bot.workflow.messages import Emphasis, Mark, Mention, Message, message, of_whole_group, words
from bot.workflow.messages import Status as MarkStatus
from bot.workflow.model import (
    Approval,
    Criterion,
    Decision,
    ErrorInfo,
    Gate,
    GateFacts,
    GateKind,
    HostResult,
    Incident,
    Status,
    StepId,
    StepRecord,
    StepStatus,
    utcnow,
)
from bot.workflow.policy import Actor, Right, Rules
from bot.workflow.render_text import plain
from bot.workflow.steps import ORDER, ROLLBACK_STEPS, SPECS


class Rejected(Exception):
    """The event does not apply (stale button, wrong person...). The message is for the user."""

    def __init__(self, message: str | Message) -> None:
        self.message = message if isinstance(message, Message) else words(message)
        super().__init__(plain(self.message))


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Begin:
    """The incident was recorded; start the first step."""


@dataclass(frozen=True)
class StepStarted:
    step: StepId
    run_id: str
    worker: str
    resumes: str | None = None  # the run id of a dead worker's run this one takes over


@dataclass(frozen=True)
class StepSucceeded:
    step: StepId
    run_id: str
    summary: str
    hosts: dict[str, HostResult] = field(default_factory=dict)
    facts: StepFacts | None = None
    criteria: dict[Criterion, bool] = field(default_factory=dict)
    skip: tuple[StepId, ...] = ()


@dataclass(frozen=True)
class StepFailed:
    step: StepId
    run_id: str
    error: ErrorInfo
    hosts: dict[str, HostResult] = field(default_factory=dict)
    facts: StepFacts | None = None
    criteria: dict[Criterion, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class StepInterrupted:
    """The worker running a step that is not safe to repeat died mid-way."""

    step: StepId
    worker: str


@dataclass(frozen=True)
class Answer:
    """A click (or a terminal prompt answer) on the open gate."""

    token: str
    actor: Actor
    choice: str  # roll_back | fix_forward | approve | restore | retry | abort
    option: str = ""  # e.g. the backup picked for a restore


@dataclass(frozen=True)
class Cancel:
    actor: Actor


@dataclass(frozen=True)
class GroupGo:
    """The group's coordinator lets a member past its hold on `step` (`group_flow`); the
    decision of the group comes with the DECIDE hold of every member but the lead."""

    step: StepId
    decision: Decision | None = None
    by: str = ""
    option: str = ""
    # Met for this member by another: its shared database, downgraded by the member that owns it.
    criteria: dict[Criterion, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupAbort:
    """Another member of the group was aborted or cancelled: this one stops too."""

    by: str
    app: str  # the member whose abort it follows


Event = (
    Begin | StepStarted | StepSucceeded | StepFailed | StepInterrupted | Answer | Cancel
    | GroupGo | GroupAbort
)  # fmt: skip

# ---- effects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunStep:
    step: StepId
    attempt: int


@dataclass(frozen=True)
class AskGate:
    gate: Gate


@dataclass(frozen=True)
class Say:
    message: Message


@dataclass(frozen=True)
class Finished:
    status: Status


Effect = RunStep | AskGate | Say | Finished

CHOICES: dict[GateKind, frozenset[str]] = {
    GateKind.DECISION: frozenset({"roll_back", "fix_forward", "abort"}),
    GateKind.APPROVE_START: frozenset({"approve", "abort"}),
    GateKind.APPROVE_DB: frozenset({"approve", "restore", "abort"}),
    GateKind.RETRY: frozenset({"retry", "abort"}),
    GateKind.GROUP: frozenset({"abort"}),
}
# Where a member of a group waits for the others: one decision for all, then each app's code,
# redeploy and verify in the group's order, the monitor once every app is verified, the
# report once every app is monitored.
GROUP_HOLDS = (StepId.DECIDE, StepId.CODE, StepId.MONITOR, StepId.REPORT)


def _choices(gate: Gate) -> frozenset[str]:
    if gate.kind is GateKind.RETRY and gate.step is StepId.DB_ROLLBACK:
        return CHOICES[gate.kind] | {"restore"}
    return CHOICES[gate.kind]


def new_steps() -> list[StepRecord]:
    return [StepRecord(id=step) for step in ORDER]


def transition(
    incident: Incident, event: Event, policy: Rules, now: datetime | None = None
) -> tuple[Incident, list[Effect]]:
    inc = incident.model_copy(deep=True)
    inc.updated_at = now or utcnow()
    if not inc.status.open and not isinstance(event, StepStarted | StepSucceeded | StepFailed):
        raise Rejected(f"Incident `{inc.id}` is already {_status_words(inc.status)}.")
    match event:
        case Begin():
            return inc, _advance(inc)
        case StepStarted():
            return _started(inc, event)
        case StepSucceeded():
            return _succeeded(inc, event)
        case StepFailed():
            return _failed(inc, event)
        case StepInterrupted():
            return _interrupted(inc, event)
        case Answer():
            return _answer(inc, event, policy)
        case Cancel():
            return _cancel(inc, event, policy)
        case GroupGo():
            return _group_go(inc, event)
        case GroupAbort():
            inc.gate = None
            effects = _abort(inc, event.by, Status.ABORTED)
            inc.outcome = f"Stopped with its group (`{event.app}` was aborted). {inc.outcome}"
            return inc, effects
    raise TypeError(event)  # pragma: no cover


def _status_words(status: Status) -> str:
    return {
        Status.COMPLETED: "completed",
        Status.FIXED_FORWARD: "closed (fix forward)",
        Status.ABORTED: "aborted",
        Status.CANCELLED: "cancelled",
    }.get(status, str(status))


def gate_for(inc: Incident, step: StepId) -> GateKind | None:
    group = inc.group
    if group is not None and not group.is_lead(inc.id) and step in {StepId.DECIDE, StepId.CODE}:
        return None  # the lead asks the group's decision and approval
    production = group.production if group is not None else inc.production
    if step is StepId.CODE and production:
        return GateKind.APPROVE_START
    return SPECS[step].gate


def _held(inc: Incident, step: StepId) -> bool:
    group = inc.group
    return group is not None and step in GROUP_HOLDS and step not in group.released


def _group_go(inc: Incident, ev: GroupGo) -> tuple[Incident, list[Effect]]:
    group, gate = inc.group, inc.gate
    if group is None or gate is None or gate.kind is not GateKind.GROUP or gate.step != ev.step:
        raise Rejected(f"{inc.app} does not wait for its group at {ev.step}")
    group.released.append(ev.step)
    inc.criteria.update(ev.criteria)
    inc.gate = None
    inc.step(ev.step).status = StepStatus.PENDING
    if ev.step is StepId.DECIDE and ev.decision is not None:
        answer = Answer("", Actor(ev.by or "rewind"), ev.decision.value, ev.option)
        return inc, [e for e in _decide(inc, answer) if not isinstance(e, Say)]
    return inc, _advance(inc)


def _gate_passed(inc: Incident, step: StepId) -> bool:
    kind = gate_for(inc, step)
    if kind is None:
        return True
    if kind is GateKind.DECISION:
        return inc.decision is not None
    return any(a.kind is kind for a in inc.approvals)


def _advance(inc: Incident) -> list[Effect]:
    rec = inc.current_step()
    if rec is None:
        return _finish(inc)
    if _held(inc, rec.id):
        return _open_gate(inc, GateKind.GROUP, rec.id)
    if not _gate_passed(inc, rec.id):
        kind = gate_for(inc, rec.id)
        assert kind is not None
        return _open_gate(inc, kind, rec.id)
    if not SPECS[rec.id].has_body:
        rec.status = StepStatus.SUCCEEDED
        return _advance(inc)
    inc.status = Status.RUNNING
    inc.gate = None
    return [RunStep(rec.id, rec.attempts + 1)]


def _open_gate(
    inc: Incident, kind: GateKind, step: StepId, error: ErrorInfo | None = None
) -> list[Effect]:
    gate = Gate(kind=kind, step=step, token=uuid.uuid4().hex[:12], facts=GateFacts(error=error))
    inc.gate = gate
    inc.status = Status.PAUSED if kind is GateKind.RETRY else Status.WAITING
    inc.step(step).status = StepStatus.FAILED if kind is GateKind.RETRY else StepStatus.WAITING
    return [AskGate(gate)]


def _finish(inc: Incident) -> list[Effect]:
    inc.gate = None
    inc.finished_at = inc.updated_at
    if inc.decision is Decision.FIX_FORWARD:
        inc.status = Status.FIXED_FORWARD
        inc.outcome = "Closed: the team chose to fix forward. Nothing was rolled back."
    elif unmet := inc.unmet_criteria():
        # Never call it complete while a criterion is unmet: pause on the report step instead.
        names = ", ".join(c.value for c in unmet)
        return _open_gate(
            inc,
            GateKind.RETRY,
            StepId.REPORT,
            error=ErrorInfo(
                what=f"Completion criteria not met: {names}",
                hint="Retry re-checks them; Abort ends the incident as not recovered.",
            ),
        )
    else:
        inc.status = Status.COMPLETED
        inc.outcome = f"Recovered: {inc.app} is back on {inc.target}, all criteria met."
    return [Finished(inc.status)]


def _started(inc: Incident, ev: StepStarted) -> tuple[Incident, list[Effect]]:
    rec = inc.step(ev.step)
    if not inc.status.open or rec.status.done:
        raise Rejected(f"step {ev.step} does not need to run")
    if rec.status is StepStatus.RUNNING and rec.run_id != ev.resumes:
        raise Rejected(f"step {ev.step} is already running ({rec.run_id})")
    rec.status = StepStatus.RUNNING
    rec.attempts += 1
    rec.run_id = ev.run_id
    rec.worker = ev.worker
    rec.started_at = inc.updated_at
    rec.error = None
    inc.status = Status.RUNNING
    return inc, []


def _check_run(inc: Incident, step: StepId, run_id: str) -> None:
    rec = inc.step(step)
    if rec.run_id != run_id or rec.status is not StepStatus.RUNNING or not inc.status.open:
        raise Rejected(f"stale result for {step} (run {run_id})")


def _apply(inc: Incident, ev: StepSucceeded | StepFailed) -> None:
    rec = inc.step(ev.step)
    rec.finished_at = inc.updated_at
    rec.hosts.update(ev.hosts)
    if ev.facts is not None:
        inc.facts.store(ev.facts)
    inc.criteria.update(ev.criteria)


def _succeeded(inc: Incident, ev: StepSucceeded) -> tuple[Incident, list[Effect]]:
    _check_run(inc, ev.step, ev.run_id)
    _apply(inc, ev)
    rec = inc.step(ev.step)
    rec.status = StepStatus.SUCCEEDED
    rec.summary = ev.summary
    for step in ev.skip:
        inc.step(step).status = StepStatus.SKIPPED
    return inc, _advance(inc)


def _failed(inc: Incident, ev: StepFailed) -> tuple[Incident, list[Effect]]:
    _check_run(inc, ev.step, ev.run_id)
    _apply(inc, ev)
    rec = inc.step(ev.step)
    rec.error = ev.error
    rec.summary = ev.error.plain()
    return inc, _open_gate(inc, GateKind.RETRY, ev.step, error=ev.error)


def _interrupted(inc: Incident, ev: StepInterrupted) -> tuple[Incident, list[Effect]]:
    rec = inc.step(ev.step)
    if rec.status is not StepStatus.RUNNING:
        raise Rejected(f"step {ev.step} is not running")
    error = ErrorInfo(
        what=f"The worker running “{SPECS[ev.step].title}” stopped mid-way ({ev.worker})",
        hint="This step is not safe to repeat blindly: check its output above, then Retry "
        "or Abort.",
    )
    rec.error = error
    rec.summary = error.plain()
    return inc, _open_gate(inc, GateKind.RETRY, ev.step, error=error)


def _answer(inc: Incident, ev: Answer, policy: Rules) -> tuple[Incident, list[Effect]]:
    gate = inc.gate
    if gate is None or gate.token != ev.token:
        answered = inc.facts.answered.get(ev.token)
        if answered:
            raise Rejected(
                message("Already answered: ", *said.answer(answered), ". Nothing changed.")
            )
        raise Rejected("That button belongs to an earlier stage of this incident; nothing changed.")
    if ev.choice not in _choices(gate):
        raise Rejected(f"“{ev.choice}” is not an answer to this question.")
    approving = ev.choice in {"approve", "restore"} or (
        ev.choice == "retry" and gate.step is StepId.DB_ROLLBACK
    )
    right = Right.APPROVE if approving else Right.OPERATE
    if reason := policy.refuse(ev.actor, right, requested_by=inc.requested_by):
        raise Rejected(reason)
    verb = {"roll_back": "Roll back", "fix_forward": "Fix forward"}.get(ev.choice, ev.choice)
    inc.facts.answered[gate.token] = AnswerFact(choice=verb, by=ev.actor.user)
    inc.gate = None
    if ev.choice == "abort":
        return inc, _abort(inc, ev.actor.user, Status.ABORTED)
    if gate.kind is GateKind.DECISION:
        return inc, _decide(inc, ev)
    if gate.kind is GateKind.RETRY and ev.choice == "retry":
        inc.step(gate.step).status = StepStatus.PENDING
        return inc, [Say(message(Mention(ev.actor.user), " chose Retry.")), *_advance(inc)]
    if gate.kind is GateKind.RETRY:  # a restore instead of the failed downgrade
        gate = gate.model_copy(update={"kind": GateKind.APPROVE_DB})
    inc.approvals.append(Approval(kind=gate.kind, user=ev.actor.user, choice=ev.choice))
    inc.step(gate.step).status = StepStatus.PENDING
    if gate.kind is GateKind.APPROVE_DB:
        inc.db_method = "restore" if ev.choice == "restore" else "downgrade"
        if ev.option:
            inc.facts.restore_backup = ev.option
    what = "restore from backup" if ev.choice == "restore" else _gate_words(gate.kind)
    approved = message(Mark(MarkStatus.OK), " ", Mention(ev.actor.user), f" approved {what}.")
    if gate.kind in said.GROUP_GATES:  # a group's lead asked it for every member
        approved = of_whole_group(approved)
    return inc, [Say(approved), *_advance(inc)]


def _gate_words(kind: GateKind) -> str:
    return {
        GateKind.APPROVE_START: "the start of the rollback",
        GateKind.APPROVE_DB: "the database downgrade",
    }.get(kind, str(kind))


def _decide(inc: Incident, ev: Answer) -> list[Effect]:
    inc.step(StepId.DECIDE).status = StepStatus.SUCCEEDED
    if ev.choice == "fix_forward":
        inc.decision = Decision.FIX_FORWARD
        inc.step(StepId.DECIDE).summary = "Fix forward"
        inc.step(StepId.DECIDE).by = ev.actor.user
        for step in ROLLBACK_STEPS:
            inc.step(step).status = StepStatus.SKIPPED
        say = Say(
            of_whole_group(
                message(
                    Mention(ev.actor.user),
                    " chose ",
                    Emphasis("Fix forward"),
                    ": the rollback path is closed; the thread and the report stay.",
                )
            )
        )
        return [say, *_advance(inc)]
    inc.decision = Decision.ROLL_BACK
    inc.step(StepId.DECIDE).summary = "Roll back"
    inc.step(StepId.DECIDE).by = ev.actor.user
    if ev.option in {"revert", "tag"}:
        inc.facts.code_method = "revert" if ev.option == "revert" else "tag"
        inc.step(StepId.DECIDE).summary += f" ({ev.option})"
    return [
        Say(of_whole_group(message(Mention(ev.actor.user), " chose ", Emphasis("Roll back"), "."))),
        *_advance(inc),
    ]


def _cancel(inc: Incident, ev: Cancel, policy: Rules) -> tuple[Incident, list[Effect]]:
    if reason := policy.refuse(ev.actor, Right.OPERATE):
        raise Rejected(reason)
    inc.gate = None
    return inc, _abort(inc, ev.actor.user, Status.CANCELLED)


def _abort(inc: Incident, user: str, status: Status) -> list[Effect]:
    rolled = [
        SPECS[r.id].title
        for r in inc.steps
        if r.id in ROLLBACK_STEPS and r.status is StepStatus.SUCCEEDED
    ]
    interrupted = [
        SPECS[r.id].title for r in inc.steps if r.status in {StepStatus.RUNNING, StepStatus.FAILED}
    ]
    not_done = [
        SPECS[r.id].title
        for r in inc.steps
        if r.id in ROLLBACK_STEPS and r.status in {StepStatus.PENDING, StepStatus.WAITING}
    ]
    for rec in inc.steps:
        if rec.status in {StepStatus.RUNNING, StepStatus.WAITING}:
            rec.status = StepStatus.FAILED if rec.status is StepStatus.RUNNING else rec.status
    inc.status = status
    inc.finished_at = inc.updated_at
    inc.ended_by = user
    parts = ["Rolled back: " + (", ".join(rolled) if rolled else "nothing") + "."]
    if interrupted:
        parts.append("Stopped mid-way: " + ", ".join(interrupted) + ".")
    if not_done:
        parts.append("Not done: " + ", ".join(not_done) + ".")
    if StepId.DB_ROLLBACK in [r.id for r in inc.steps if r.status is StepStatus.SUCCEEDED]:
        parts.append("The database was rolled back; its backup is kept.")
    undo = [
        f"{SPECS[r.id].title}: {SPECS[r.id].compensation}"
        for r in inc.steps
        if r.id in ROLLBACK_STEPS and r.status is StepStatus.SUCCEEDED
    ]
    if undo:
        parts.append("To undo: " + "; ".join(undo) + ".")
    inc.outcome = " ".join(parts)
    return [Say(said.outcome(inc, app=False)), Finished(status)]
