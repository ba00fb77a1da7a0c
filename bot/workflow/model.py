"""The incident: everything Rewind knows about one rollback, serialisable as JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator

from bot.workflow.baseline import Baseline
from bot.workflow.facts import Facts
from bot.workflow.policy import is_production


def utcnow() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    RUNNING = "running"  # a step is queued or running
    WAITING = "waiting"  # a person must decide or approve
    PAUSED = "paused"  # a step failed: Retry or Abort
    COMPLETED = "completed"
    FIXED_FORWARD = "fixed_forward"
    ABORTED = "aborted"
    CANCELLED = "cancelled"

    @property
    def open(self) -> bool:
        return self in {Status.RUNNING, Status.WAITING, Status.PAUSED}


class StepId(StrEnum):
    PREREQUISITES = "prerequisites"
    ASSESS = "assess"
    DECIDE = "decide"
    CODE = "code"
    DB_PREPARE = "db_prepare"
    DB_ROLLBACK = "db_rollback"
    REDEPLOY = "redeploy"
    VERIFY = "verify"
    MONITOR = "monitor"
    REPORT = "report"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def done(self) -> bool:
        return self in {StepStatus.SUCCEEDED, StepStatus.SKIPPED}


class GateKind(StrEnum):
    DECISION = "decision"  # Roll back / Fix forward
    APPROVE_START = "approve_start"  # production: an approver lets the rollback start
    APPROVE_DB = "approve_db"  # downgrade (or restore) the database
    RETRY = "retry"  # a step failed: Retry / Abort
    GROUP = "group"  # a member of a group waits for the other apps (no button; `group_flow`)


class Criterion(StrEnum):
    """The runbook's completion criteria, each checked by the bot."""

    DEPLOYED = "Previous version deployed"
    DATABASE = "Database rolled back (if needed)"
    HEALTH = "Health checks passing"
    LOGS = "No errors in logs"
    SMOKE = "Critical functionality working"
    MONITORED = "Monitored for the set time"
    REPORT = "Incident report created"


def _no_criteria() -> dict[Criterion, bool | None]:
    return dict.fromkeys(Criterion)


class Decision(StrEnum):
    ROLL_BACK = "roll_back"
    FIX_FORWARD = "fix_forward"


class HostResult(BaseModel):
    host: str
    ok: bool
    summary: str
    detail: str = ""


class ErrorInfo(BaseModel):
    what: str
    host: str | None = None
    hint: str = ""
    detail: str = ""
    channels: list[str] = Field(default_factory=list)  # ids: each front names them

    def plain(self) -> str:
        where = f" on {self.host}" if self.host else ""
        hint = f" {self.hint}" if self.hint else ""
        return f"{self.what}{where}.{hint}"


class StepRecord(BaseModel):
    id: StepId
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    run_id: str | None = None  # the execution that marked it running
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    summary: str = ""  # plain words; `by` names who chose it, for a step a person decides
    by: str = ""  # user id
    hosts: dict[str, HostResult] = Field(default_factory=dict)
    error: ErrorInfo | None = None


class GateFacts(BaseModel):
    """What a gate shows beside its question: the failed step's error (a Retry gate); the
    other gates show the incident's own facts."""

    error: ErrorInfo | None = None

    @field_validator("error", mode="before")
    @classmethod
    def _stored_error(cls, value: Any) -> Any:
        """An error stored without `what`, or as bare words, still reads as a failure."""
        if isinstance(value, str):
            return {"what": value or "A step failed"}
        if isinstance(value, dict):
            return {"what": "A step failed", **value}
        return value


class Gate(BaseModel):
    """A pause where a person must click. `token` makes every answer single-use."""

    kind: GateKind
    step: StepId
    token: str
    opened_at: datetime = Field(default_factory=utcnow)
    facts: GateFacts = Field(default_factory=GateFacts)


class Approval(BaseModel):
    kind: GateKind
    user: str
    at: datetime = Field(default_factory=utcnow)
    choice: str = ""


class MemberRow(BaseModel):
    """One app of a group as the lead's parent message shows it (kept up to date by the
    group's coordinator)."""

    app: str
    incident: str
    status: Status = Status.RUNNING
    steps: list[StepRecord] = Field(default_factory=list)  # id, status and summary only
    # What its Assess found, for the group's one decision: each app's rollback in one line.
    environment: str = ""
    deployed: str = ""
    target: str = ""
    commits: int = 0
    migrations: int = 0
    irreversible: bool = False


class GroupRef(BaseModel):
    """This incident is one app of a release group rolled back as one incident: its `lead`
    (the first app) asks the group's questions and owns the thread; every member posts there."""

    name: str
    lead: str  # the lead member's incident id, which is also the group incident's id
    members: list[str]  # incident ids, in the group's order
    apps: list[str]
    production: bool = True  # four-eyes when any member is production
    released: list[StepId] = Field(default_factory=list)  # holds the group has let go
    rows: list[MemberRow] = Field(default_factory=list)  # the lead's: every member's steps

    def is_lead(self, incident_id: str) -> bool:
        return incident_id == self.lead


class ThreadRef(BaseModel):
    channel: str
    ts: str
    permalink: str = ""


class Incident(BaseModel):
    id: str
    app: str
    environment: str
    requested_version: str | None
    reason: str = ""
    requested_by: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    status: Status = Status.RUNNING
    steps: list[StepRecord]
    gate: Gate | None = None
    decision: Decision | None = None
    db_method: str | None = None  # "downgrade" or "restore", chosen at the approval
    approvals: list[Approval] = Field(default_factory=list)
    facts: Facts = Field(default_factory=Facts)
    criteria: dict[Criterion, bool | None] = Field(default_factory=lambda: _no_criteria())
    thread: ThreadRef | None = None
    lock_token: int = 0
    version: int = 0  # bumped on every save; the store refuses stale writes
    schema_version: int = 3  # of the stored JSON: `bot.workflow.schema` migrates older ones
    major: bool = False
    outcome: str = ""  # plain words; `ended_by` is who aborted or cancelled it
    ended_by: str = ""  # user id
    # How the app did before the deploy being rolled back (its watch measured it), if known.
    baseline: Baseline | None = None
    # One app of a release group (`/rollback GROUP`); None for a single app's rollback.
    group: GroupRef | None = None

    # Decided from the apps file's `environments` when the incident is opened; None in records
    # stored before, then read from the name (production unless a known non-production one).
    production_env: bool | None = None

    @property
    def production(self) -> bool:
        if self.production_env is not None:
            return self.production_env
        return is_production(self.environment)

    @property
    def target(self) -> str | None:
        target = self.facts.assess.target or self.requested_version
        return str(target) if target else None

    def step(self, step_id: StepId) -> StepRecord:
        for rec in self.steps:
            if rec.id == step_id:
                return rec
        raise KeyError(step_id)

    def current_step(self) -> StepRecord | None:
        for rec in self.steps:
            if not rec.status.done:
                return rec
        return None

    def unmet_criteria(self) -> list[Criterion]:
        return [c for c, ok in self.criteria.items() if ok is not True]
