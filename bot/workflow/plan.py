"""The plan as data (kept in the store for `Run this plan`), and what changed since it was made."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from bot.workflow.facts import AssessFacts, Facts, PlanBasis
from bot.workflow.model import StepId, utcnow

__all__ = ["PlanBasis"]


class PlanCommand(BaseModel):
    step: StepId
    host: str
    name: str
    command: str
    changes: bool = True  # False: it only reads
    note: str = ""
    batch: int = 0  # the redeploy batch (1, 2, …); 0 outside the redeploy


class PlanApproval(BaseModel):
    question: str
    buttons: str
    who: list[str]
    rule: str = ""


class Migration(BaseModel):
    revision: str
    down_revision: str | None = None
    message: str = ""
    irreversible: bool = False


class PlanDatabase(BaseModel):
    run_on: str
    current: str | None
    target: str | None
    migrations: list[Migration]
    backup_command: str
    backup_path: str
    sql: str
    sql_error: str = ""
    restore_default: str = ""
    recommended: str = "downgrade"  # or "restore" when a migration cannot be undone


class PlanChecks(BaseModel):
    health: list[str]
    logs: list[str]  # "host: command"
    error_pattern: str
    smoke: list[str]  # "host: command"
    monitor_duration: float
    monitor_interval: float
    failure_streak: int
    signals: list[str] = Field(default_factory=list)  # every query judged, with its threshold


class Plan(BaseModel):
    id: str  # also the id of the incident `Run this plan` opens
    app: str
    environment: str
    requested_version: str | None
    by: str
    reason: str = ""  # the reason `Run this plan` opens the incident with
    at: datetime = Field(default_factory=utcnow)
    basis: PlanBasis
    deployed: str
    commits: list[dict[str, Any]] = Field(default_factory=list)
    commit_count: int = 0
    code_methods: list[str] = Field(default_factory=list)
    code_reason: str = ""
    branch: str
    branch_commits: list[str] = Field(default_factory=list)  # `git log --oneline` of the reverts
    branch_tree: str = ""
    git_commands: list[str] = Field(default_factory=list)  # in the bot's clone, not on a host
    database: PlanDatabase | None = None
    commands: list[PlanCommand] = Field(default_factory=list)
    restore_commands: list[PlanCommand] = Field(default_factory=list)
    checks: PlanChecks
    approvals: list[PlanApproval] = Field(default_factory=list)
    estimate: str = "no history"
    probes: list[PlanCommand] = Field(default_factory=list)  # run while planning, read-only
    busy: str = ""  # an open incident holds the app
    # deploy.releases: the hosts that keep the target at the rollback commit (switch and
    # restart only); None: the app keeps no releases.
    warm_hosts: list[str] | None = None

    @property
    def target(self) -> str:
        return self.basis.target


class GroupPlan(BaseModel):
    """The plan of a release group (`/rollback plan GROUP`): each member's plan, in the group's
    order, and what runs when across them. Kept under its own id for `Run this plan`, which
    opens each member under its own plan's id, pinned to that plan's target."""

    id: str
    group: str
    plans: list[Plan]
    order: list[str]  # plain lines, one per stage

    @property
    def reason(self) -> str:
        return self.plans[0].reason if self.plans else ""


def plan_facts(basis: PlanBasis | None) -> Facts:
    """An incident's facts when it starts from a plan: Assess compares what it finds with the
    plan, and the code step takes the plan's method."""
    if basis is None:
        return Facts()
    method: Literal["revert", "tag"] = "revert" if basis.code_method == "revert" else "tag"
    return Facts(plan=basis, code_method=method)


def changes_since(basis: PlanBasis, facts: AssessFacts) -> list[str]:
    """What differs between the plan's basis and a fresh assessment, in plain words."""
    out: list[str] = []
    now_hosts = facts.deployed_by_host
    for host in sorted(set(basis.deployed_by_host) | set(now_hosts)):
        was, now = basis.deployed_by_host.get(host), now_hosts.get(host)
        if was != now:
            out.append(f"{host} was on {was or 'nothing'} in the plan, now on {now or 'nothing'}")
    deployed_sha = facts.deployed_sha
    if not out and deployed_sha and deployed_sha != basis.deployed_sha:
        was, now = basis.deployed_sha[:12], deployed_sha[:12]
        out.append(f"the deployed commit was {was} in the plan, now {now}")
    if facts.target_sha and facts.target_sha != basis.target_sha:
        out.append(
            f"{basis.target} pointed at {basis.target_sha[:12]} in the plan, now at "
            f"{facts.target_sha[:12]}"
        )
    if facts.db_current_revision != basis.db_revision:
        out.append(
            f"the database was at revision {basis.db_revision or 'base'} in the plan, now at "
            f"{facts.db_current_revision or 'base'}"
        )
    return out
