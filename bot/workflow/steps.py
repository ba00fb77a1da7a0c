"""The runbook's steps as units: order, the gate before each, and whether a re-run is safe."""

from __future__ import annotations

from dataclasses import dataclass

from bot.workflow.model import GateKind, StepId


@dataclass(frozen=True)
class StepSpec:
    id: StepId
    title: str
    runbook: str  # the runbook section it automates
    inputs: str
    outputs: str
    # Safe to run again after a worker died mid-step? Otherwise the incident pauses for a person.
    repeatable: bool
    compensation: str  # what undoes it, told to the user on Abort
    gate: GateKind | None = None  # a person must click before it runs
    has_body: bool = True


STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        StepId.PREREQUISITES,
        "Prerequisites",
        "Prerequisites",
        "reason, apps file",
        "issue confirmed, stakeholders notified, policy",
        repeatable=True,
        compensation="nothing to undo",
    ),
    StepSpec(
        StepId.ASSESS,
        "Assess the situation",
        "Step 1",
        "hosts, repo, requested version",
        "deployed version, target, commits, migrations",
        repeatable=True,
        compensation="nothing to undo (read-only)",
    ),
    StepSpec(
        StepId.DECIDE,
        "Decide: roll back or fix forward",
        "Step 1 — Decision",
        "assess facts",
        "the decision",
        repeatable=True,
        compensation="nothing to undo",
        gate=GateKind.DECISION,
        has_body=False,
    ),
    StepSpec(
        StepId.CODE,
        "Roll back code",
        "Step 2",
        "target version, deployed version",
        "hotfix/rollback-… branch pushed to origin",
        repeatable=True,
        compensation="delete the hotfix branch on origin; hosts are untouched",
    ),
    StepSpec(
        StepId.DB_PREPARE,
        "Back up database, preview downgrade",
        "Step 3 — Check for migrations",
        "current and target revisions",
        "backup file, downgrade SQL",
        repeatable=True,
        compensation="nothing to undo (backup kept)",
    ),
    StepSpec(
        StepId.DB_ROLLBACK,
        "Roll back database",
        "Step 3 — Rollback migrations / Restore from backup",
        "approved method, backup",
        "database at the target revision",
        repeatable=False,
        compensation="restore the backup taken before the downgrade, or re-run `alembic upgrade`",
        gate=GateKind.APPROVE_DB,
    ),
    StepSpec(
        StepId.REDEPLOY,
        "Redeploy previous version",
        "Step 4",
        "hotfix ref",
        "every host on the target version",
        repeatable=True,
        compensation="redeploy the version that was running before",
    ),
    StepSpec(
        StepId.VERIFY,
        "Verify rollback",
        "Step 5",
        "health URLs, logs, smoke tests",
        "health, logs and functionality checked",
        repeatable=True,
        compensation="nothing to undo (read-only)",
    ),
    StepSpec(
        StepId.MONITOR,
        "Monitor",
        "Step 6",
        "monitor duration and interval",
        "availability, errors, latency",
        repeatable=True,
        compensation="nothing to undo (read-only)",
    ),
    StepSpec(
        StepId.REPORT,
        "Incident report",
        "Post-Rollback Actions",
        "audit trail, monitor figures",
        "incidents/rollback-….md, posted in the thread",
        repeatable=True,
        compensation="nothing to undo",
    ),
)

SPECS: dict[StepId, StepSpec] = {spec.id: spec for spec in STEPS}
ORDER: tuple[StepId, ...] = tuple(spec.id for spec in STEPS)
DB_STEPS = (StepId.DB_PREPARE, StepId.DB_ROLLBACK)
ROLLBACK_STEPS = (StepId.CODE, *DB_STEPS, StepId.REDEPLOY, StepId.VERIFY, StepId.MONITOR)


def spec(step: StepId) -> StepSpec:
    return SPECS[step]
