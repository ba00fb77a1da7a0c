"""What each step found, as typed models: one per step's output, read by attribute everywhere.

A step returns its model in its `Outcome`; the machine stores it in the incident's `Facts`, in
the slot of its type. A step returns its slot whole: Roll back the database starts from what
Prepare wrote (`ctx.facts.db.model_copy(update=...)`). Renderers read attributes, so mypy
checks every read and a renamed field is a type error instead of an empty line in a message.

Every field has a default, so a reader never needs a None check for a step not yet run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Facts(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CommitFact(_Facts):
    sha: str
    short: str = ""
    subject: str = ""
    merge: bool = False


class MigrationFact(_Facts):
    revision: str
    down_revision: str | None = None
    message: str = ""
    irreversible: bool = False


class BackupFact(_Facts):
    path: str
    name: str = ""
    size: int = 0  # bytes
    time: str = ""  # ISO 8601, UTC
    mtime: float = 0.0
    own: bool = False  # taken by this incident
    before_deploy: bool = False  # taken before the bad version was deployed


class PlanBasis(_Facts):
    """What a plan depended on; `Run this plan` says which of it changed before anything runs."""

    deployed_by_host: dict[str, str]
    deployed_sha: str
    target: str
    target_sha: str
    db_revision: str | None = None
    code_method: str = "tag"


class DbAssessment(_Facts):
    """What Assess finds about the database (part of `AssessFacts`)."""

    target_revision: str | None = None
    current_revision: str | None = None
    migrations: list[MigrationFact] = Field(default_factory=list)
    irreversible: bool = False
    summary: str = ""


class PrerequisitesFacts(_Facts):
    notified_start: list[str] = Field(default_factory=list)  # channels told of the start
    notices_held: list[str] = Field(default_factory=list)  # told once Slack answers again
    policy: str = ""


class AssessFacts(_Facts):
    deployed: str = ""
    deployed_by_host: dict[str, str] = Field(default_factory=dict)
    deployed_sha: str = ""
    target: str = ""
    target_sha: str = ""
    commits: list[CommitFact] = Field(default_factory=list)  # at most 50
    commit_count: int = 0
    git_log: str = ""
    merges: list[CommitFact] = Field(default_factory=list)
    code_methods: list[Literal["revert", "tag"]] = Field(default_factory=list)
    code_method_recommended: Literal["revert", "tag"] | None = None
    code_method_reason: str = ""
    hotfix_branch: str = ""
    db_target_revision: str | None = None
    db_current_revision: str | None = None
    migrations: list[MigrationFact] = Field(default_factory=list)  # newest first: the undo order
    irreversible: bool = False
    db_summary: str = ""
    plan_changes: list[str] = Field(default_factory=list)
    # Each host's resource usage with the bad version running: the "before" of the rollback.
    resources: list[ResourceFact] = Field(default_factory=list)
    # deploy.releases: each host's kept releases {name: commit}, and the hosts that keep the
    # target (read by Assess; the redeploy reads each host again before it switches).
    kept_releases: dict[str, dict[str, str]] = Field(default_factory=dict)
    warm_hosts: list[str] = Field(default_factory=list)

    def with_db(self, db: DbAssessment) -> AssessFacts:
        return self.model_copy(
            update={
                "db_target_revision": db.target_revision,
                "db_current_revision": db.current_revision,
                "migrations": db.migrations,
                "irreversible": db.irreversible,
                "db_summary": db.summary,
            }
        )


class CodeFacts(_Facts):
    hotfix_ref: str = ""
    hotfix_sha: str = ""
    method: Literal["revert", "tag"] | None = None


class DbFacts(_Facts):
    assessed: DbAssessment | None = None  # the database as Prepare re-read it
    backup: BackupFact | None = None  # the one taken by Prepare
    backups: list[BackupFact] = Field(default_factory=list)  # restorable, newest first
    restore_default: str = ""
    sql_preview: str = ""
    sql_lines: int = 0
    irreversible: bool = False
    irreversible_revisions: list[str] = Field(default_factory=list)
    risk: str = ""
    recommended: Literal["downgrade", "restore"] | None = None
    revision_after: str | None = None
    restored: str = ""
    verify: str = ""


class HostCheckFact(_Facts):
    """One check of one host read as it came back (a health URL of its own, its logs)."""

    kind: Literal["health", "logs"]
    name: str  # `http://…/healthz (web1)`, `logs on web1`
    verdict: Literal["passed", "failed", "inconclusive"] = "inconclusive"
    value: float | None = None  # the latency in ms; the count of error lines
    query: str = ""  # the URL; the logs command
    reason: str = ""  # what it said: `200 in 3 ms`, why the logs could not be read
    status: int | None = None  # the HTTP status
    lines: list[str] = Field(default_factory=list)  # the error lines found (at most 20)
    said: str = ""  # its line in the thread, as Verify shows it

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"


class HostCheckFacts(_Facts):
    """A host's own checks, read by Redeploy as soon as that host was redeployed."""

    ref: str  # the rollback ref it was redeployed to
    restart_at: str = ""  # the restart these checks followed (ISO 8601 UTC; '' unknown)
    at: str = ""  # when the checks ended (ISO 8601 UTC)
    checks: list[HostCheckFact] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


class RedeployFacts(_Facts):
    ref: str = ""
    redeployed_hosts: list[str] = Field(default_factory=list)
    restart_at: dict[str, str] = Field(default_factory=dict)  # host -> ISO 8601 UTC
    host_utc_offset: dict[str, int] = Field(default_factory=dict)  # host -> seconds
    versions_by_host: dict[str, str] = Field(default_factory=dict)  # what `version` reported
    dependency_fingerprint: dict[str, str] = Field(default_factory=dict)
    verified: dict[str, HostCheckFacts] = Field(default_factory=dict)  # host -> as it came back


class SignalFact(_Facts):
    """One reading of one of the team's signals (a `metrics:` entry), as judged."""

    name: str
    provider: str = ""
    verdict: Literal["passed", "failed", "inconclusive"] = "inconclusive"
    value: float | None = None
    before: float | None = None  # the same query before the bad deploy, when known
    unit: str = ""
    threshold: str = ""  # in words: `max 0.01`, `min 1, max 5`
    query: str = ""  # as sent, placeholders filled; never a secret
    said: str = ""  # the whole sentence: `checkout error rate 0.2 (before …; max 1): why`

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"


class ResourceFact(_Facts):
    """One host's resource usage at one reading, in percent, as judged."""

    host: str
    verdict: Literal["passed", "failed", "inconclusive"] = "inconclusive"
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None
    service: str = ""  # the service's own CPU and RSS, in words
    said: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"


class VerifyFacts(_Facts):
    checks: dict[str, bool] = Field(default_factory=dict)  # health / logs / smoke -> passed
    vs_baseline: str = ""
    signals: list[SignalFact] = Field(default_factory=list)
    resources: list[ResourceFact] = Field(default_factory=list)


class UrlFigures(_Facts):
    url: str
    host: str | None = None
    probes: int = 0
    ok: int = 0
    availability: float | None = None  # percent
    p50_ms: float | None = None
    p95_ms: float | None = None
    streak: int = 0  # failing probes in a row, now
    worst_streak: int = 0
    last: str = ""


class MonitorFacts(_Facts):
    started_at: str = ""
    updated_at: str = ""
    duration: float = 0.0
    interval: float = 0.0
    elapsed: float = 0.0
    rounds: int = 0
    done: bool = False
    availability: float | None = None  # percent
    p95_ms: float | None = None
    vs_baseline: str = ""
    error_count: int = 0
    errors: dict[str, int] = Field(default_factory=dict)  # error lines per host
    alerts: int = 0
    urls: list[UrlFigures] = Field(default_factory=list)
    signals: list[SignalFact] = Field(default_factory=list)  # the last round's readings
    resources: list[ResourceFact] = Field(default_factory=list)  # the last round's, per host
    signal_streak: int = 0  # rounds in a row with a failed or inconclusive signal, now
    signal_rounds_failed: int = 0


class ReportFacts(_Facts):
    path: str = ""
    commit: str = ""
    pushed: bool = False
    postmortem_path: str = ""


StepFacts = (
    PrerequisitesFacts
    | AssessFacts
    | CodeFacts
    | DbFacts
    | RedeployFacts
    | VerifyFacts
    | MonitorFacts
    | ReportFacts
)
_SLOTS: dict[type[BaseModel], str] = {
    PrerequisitesFacts: "prerequisites",
    AssessFacts: "assess",
    CodeFacts: "code",
    DbFacts: "db",
    RedeployFacts: "redeploy",
    VerifyFacts: "verify",
    MonitorFacts: "monitor",
    ReportFacts: "report",
}

_STEP_SLOTS = {
    "prerequisites": "prerequisites",
    "assess": "assess",
    "code": "code",
    "db_prepare": "db",
    "db_rollback": "db",
    "redeploy": "redeploy",
    "verify": "verify",
    "monitor": "monitor",
    "report": "report",
}


class AnswerFact(BaseModel):
    """Who answered a gate, and with what: the words and the person kept apart, so that each
    front names the person its own way."""

    choice: str  # the button's words: "Roll back", "approve", "retry", …
    by: str = ""  # user id


class Facts(_Facts):
    """Everything the steps found, one slot per step's model, plus what people chose."""

    prerequisites: PrerequisitesFacts = Field(default_factory=PrerequisitesFacts)
    assess: AssessFacts = Field(default_factory=AssessFacts)
    code: CodeFacts = Field(default_factory=CodeFacts)
    db: DbFacts = Field(default_factory=DbFacts)
    redeploy: RedeployFacts = Field(default_factory=RedeployFacts)
    verify: VerifyFacts = Field(default_factory=VerifyFacts)
    monitor: MonitorFacts = Field(default_factory=MonitorFacts)
    report: ReportFacts = Field(default_factory=ReportFacts)
    # Chosen by people (at the decision, the approval) or by a plan:
    code_method: Literal["revert", "tag"] | None = None
    restore_backup: str = ""
    plan: PlanBasis | None = None
    answered: dict[str, AnswerFact] = Field(default_factory=dict)  # gate token -> the answer
    waiting: dict[str, str] = Field(default_factory=dict)  # what a running step waits for

    @property
    def database(self) -> DbAssessment:
        """The database's revisions and what to undo: as Prepare re-read them, else as Assess
        found them."""
        if self.db.assessed is not None:
            return self.db.assessed
        a = self.assess
        return DbAssessment(
            target_revision=a.db_target_revision,
            current_revision=a.db_current_revision,
            migrations=a.migrations,
            irreversible=a.irreversible,
            summary=a.db_summary,
        )

    def store(self, found: StepFacts) -> None:
        """Keep a step's model in its slot."""
        setattr(self, _SLOTS[type(found)], found.model_copy(deep=True))

    def of_step(self, step: str) -> StepFacts | None:
        """The slot step `step` (a `StepId` value) writes; None for a step that writes none."""
        slot = _STEP_SLOTS.get(step)
        found: StepFacts | None = getattr(self, slot) if slot else None
        return found
