"""Making a plan: Assess as the incident would run it, then every step's commands from the
steps' own builders. Only read-only commands reach the hosts; the hotfix branch is made in a
scratch clone that is deleted afterwards; no lock is taken and nothing is pushed."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from bot.checks import Check
from bot.checks.kinds import Unreadable
from bot.config.apps_file import AppConfig, DatabaseConfig
from bot.incidents.host_runners import RunnerFactory
from bot.incidents.service import IncidentService, OpenRequest, new_incident_id
from bot.ports import AuditEntry
from bot.steps import assess, code, database, redeploy, signals, verify
from bot.steps.context import Planned, StepContext
from bot.workflow.errors import StepError, UserFacingError
from bot.workflow.facts import AnswerFact, AssessFacts
from bot.workflow.machine import gate_for, new_steps
from bot.workflow.messages import Message
from bot.workflow.model import Gate, GateKind, Incident, Status, StepId, ThreadRef
from bot.workflow.plan import (
    Migration,
    Plan,
    PlanApproval,
    PlanBasis,
    PlanChecks,
    PlanCommand,
    PlanDatabase,
)
from bot.workflow.policy import Actor
from bot.workflow.steps import ORDER
from bot.workflow.version import Version
from runners import alembic_output, backups, releases, templates
from runners.git import Method, push_args
from runners.recording import RecordingRunner
from runners.strategies import strategy

PLAN_TTL = 24 * 3600  # how long `Run this plan` stays possible


class Quiet:
    """A `Notifier` for planning: the steps' messages are not posted anywhere."""

    async def open_thread(self, incident: Incident) -> ThreadRef:
        return ThreadRef(channel="", ts="")

    async def update_parent(self, incident: Incident) -> None:
        return None

    async def say(self, incident: Incident, message: Message) -> None:
        return None

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        return None

    async def flush(self, incident: Incident) -> None:
        return None

    async def ask(self, incident: Incident, gate: Gate) -> None:
        return None

    async def stakeholders(
        self,
        incident: Incident,
        phase: Literal["start", "end"],
        channels: Sequence[str] | None = None,
        members: Sequence[Incident] = (),
    ) -> list[str]:
        return []

    async def held_notices(self, incident: Incident) -> list[str]:
        return []

    async def upload(
        self,
        incident: Incident,
        filename: str,
        content: str,
        title: str,
        comment: str = "",
        *,
        whole_group: bool = False,
    ) -> None:
        return None

    async def alert(self, incident: Incident, message: Message) -> None:
        return None

    async def resolve_gate(self, incident: Incident, token: str, answer: AnswerFact) -> None:
        return None


async def _no_fence() -> None:
    return None  # planning holds no lock, and needs none: it changes nothing


async def _no_timeline() -> list[AuditEntry]:
    return []


class Planner:
    def __init__(
        self, incidents: IncidentService, runner_factory: RunnerFactory, workspace: Path
    ) -> None:
        self.incidents = incidents
        self.runner_factory = runner_factory
        self.workspace = workspace

    async def plan(
        self, app_name: str, version: Version | None, actor: Actor, *, reason: str = ""
    ) -> Plan:
        """Refused exactly as `/rollback` refuses (unknown app or version, no rights)."""
        # The reason is optional in a plan; one given is checked as `/rollback` checks it.
        request = OpenRequest(app_name, version, reason or "a plan", actor)
        app = self.incidents.check_request(request)
        if version is not None:
            await self.incidents.check_version_exists(app, version)
        plan_id = new_incident_id()
        root = self.workspace / "plans"
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{app.name}-{plan_id}-", dir=root))
        runner = RecordingRunner(self.runner_factory(app))
        incident = Incident(
            id=plan_id,
            app=app.name,
            environment=app.environment,
            production_env=app.production,
            requested_version=str(version) if version else None,
            reason="plan",
            requested_by=actor.user,
            steps=new_steps(),
        )
        ctx = StepContext(
            incident=incident,
            step=StepId.ASSESS,
            app=app,
            apps=self.incidents.apps,
            hosts=runner,
            notifier=Quiet(),
            repos=self.incidents.repos,
            workspace=scratch,  # the steps' clone goes here: a scratch clone, deleted below
            fence=_no_fence,
            timeline=_no_timeline,
        )
        try:
            plan = await _Making(ctx, runner).make(actor)
        except StepError as exc:
            where = f" on {exc.host}" if exc.host else ""
            raise UserFacingError(
                f"No plan: {exc.what}{where}. {exc.hint}".replace(" Retry — or Abort.", "")
            ) from None
        finally:
            await runner.close()
            await asyncio.to_thread(shutil.rmtree, scratch, True)
        plan.reason = reason
        plan.estimate = estimate(
            [i for i in await self.incidents.store.recent_incidents(100) if i.app == app.name]
        )
        holder = await self.incidents.store.lock_holder(app.name)
        if holder:
            plan.busy = holder
        await self.incidents.store.save_plan(plan.id, plan.model_dump_json(), PLAN_TTL)
        return plan


def _warm(found: AssessFacts, target: str, sha: str) -> list[str]:
    """The hosts whose kept release of `target` holds the hotfix branch's commit or the
    target's own (a revert branch holds exactly the target's files)."""
    try:
        name = releases.release_name(target)
    except UserFacingError:
        return []
    kept = found.kept_releases
    return [h for h in kept if releases.holds(kept[h].get(name, ""), sha, found.target_sha)]


class _Making:
    def __init__(self, ctx: StepContext, runner: RecordingRunner) -> None:
        self.ctx, self.runner, self.app = ctx, runner, ctx.app
        self.cmds: list[PlanCommand] = []
        self.restore: list[PlanCommand] = []

    def add(self, step: StepId, host: str, planned: Planned, batch: int = 0) -> None:
        self.cmds.append(
            PlanCommand(
                step=step,
                host=host,
                name=planned.name,
                command=planned.command,
                changes=planned.changes,
                note=planned.note,
                batch=batch,
            )
        )

    async def make(self, actor: Actor) -> Plan:
        ctx, app = self.ctx, self.app
        outcome = await assess.run(ctx)  # the incident's own Assess: read-only
        if outcome.facts is not None:
            ctx.incident.facts.store(outcome.facts)
        facts = ctx.incident.facts
        found = facts.assess
        for host in app.hosts:
            version = templates.build(app, host, "version")
            if version:
                self.add(StepId.ASSESS, host.name, Planned("version", version, changes=False))
        if app.database:
            current = database.current_command(app, app.database)
            self.add(StepId.ASSESS, app.database.run_on, Planned("alembic current", current, False))
        method = code.chosen_method(facts)
        target, branch = found.target, code.hotfix_branch_for(ctx)
        branch_commits, sha = await self._branch(found, branch, method)
        db = await self._database(app.database, found) if found.migrations else None
        ref = branch
        deploy_hosts = strategy(app.deploy.strategy).deploy_hosts(app)
        # The run reads each host again before it switches; this is what Assess read now.
        warm = _warm(found, target, sha) if app.deploy.releases else None
        for number, batch in enumerate(redeploy.batches(deploy_hosts, app.deploy.rolling), 1):
            for host in batch:
                kept = None if warm is None else host.name in warm
                for planned in redeploy.host_script(app, host, ref, target, warm=kept).planned():
                    self.add(StepId.REDEPLOY, host.name, planned, batch=number)
        checks = self._checks()
        probes = [
            PlanCommand(step=StepId.ASSESS, host=h, name="read", command=c, changes=False)
            for h, c in self.runner.ran
        ]
        basis = PlanBasis(
            deployed_by_host=dict(found.deployed_by_host),
            deployed_sha=found.deployed_sha,
            target=target,
            target_sha=found.target_sha,
            db_revision=found.db_current_revision,
            code_method=method,
        )
        return Plan(
            id=ctx.incident.id,
            app=app.name,
            environment=app.environment,
            requested_version=ctx.incident.requested_version,
            by=actor.user,
            basis=basis,
            deployed=found.deployed,
            commits=[c.model_dump() for c in found.commits],
            commit_count=found.commit_count,
            code_methods=list(found.code_methods),
            code_reason=found.code_method_reason,
            branch=branch,
            branch_commits=branch_commits,
            branch_tree=sha,
            git_commands=[" ".join(push_args(branch))],
            database=db,
            commands=self.cmds,
            restore_commands=self.restore,
            checks=checks,
            approvals=approvals(app, ctx.incident, bool(found.migrations)),
            probes=probes,
            warm_hosts=warm,
        )

    async def _branch(self, facts: AssessFacts, branch: str, method: str) -> tuple[list[str], str]:
        """The hotfix branch, really made in the scratch clone (never pushed)."""
        repo = code.app_repo(self.ctx)
        target_sha, deployed_sha = facts.target_sha, facts.deployed_sha
        chosen: Method = "revert" if method == "revert" else "tag"
        sha = await repo.create_hotfix(branch, target_sha, deployed_sha, chosen)
        added = await repo.commits_between(deployed_sha, sha) if sha != target_sha else []
        return [c.oneline() for c in added], sha

    async def _database(self, db: DatabaseConfig | None, facts: AssessFacts) -> PlanDatabase:
        assert db is not None
        app, ctx = self.app, self.ctx
        host = app.host(db.run_on)
        current, target = facts.db_current_revision, facts.db_target_revision
        migrations = [Migration.model_validate(m.model_dump()) for m in facts.migrations]
        if not db.backup:
            raise StepError(
                "no `database.backup` command is configured",
                hint="Rewind does not touch a database without a backup: add one to the apps file.",
            )
        path = backups.backup_location(db, app.name, ctx.incident.id, datetime.now(UTC))
        cmds = database.prepare_commands(app, db, path, current, target)
        # The same reads `prepare` makes, so the plan shows what a restore could use.
        deployed_at = await database.read_deployed_at(ctx, host, cmds.deployed_at)
        listed = await database.listed_backups(ctx, host, cmds.listing)
        stat = cmds.stat(app, host, listed)
        stats = await database.stat_backups(ctx, host, stat)
        result = await ctx.run(host, cmds.sql, stream=False)
        sql = alembic_output.sql_text(result.output) if result.ok else ""
        error = "" if result.ok else result.tail()
        for planned in cmds.sequence(database.current_command(app, db), stat):
            self.add(StepId.DB_PREPARE, host.name, planned)
        for planned in database.rollback_sequence(app, db, target):
            self.add(StepId.DB_ROLLBACK, host.name, planned)
        older = sorted(
            (mtime, p)
            for p, (_, mtime) in stats.items()
            if deployed_at is not None and mtime < deployed_at
        )
        default = older[-1][1] if older else path
        irreversible = any(m.irreversible for m in migrations) or (
            not result.ok and "NotImplementedError" in result.output
        )
        if db.restore:
            restore = database.restore_commands(app, db, default)
            for where, planned in restore.sequence(app, database.current_command(app, db)):
                self.restore.append(
                    PlanCommand(
                        step=StepId.DB_ROLLBACK,
                        host=where,
                        name=planned.name,
                        command=planned.command,
                        changes=planned.changes,
                        note=planned.note,
                    )
                )
        return PlanDatabase(
            run_on=host.name,
            current=current,
            target=target,
            migrations=migrations,
            backup_command=cmds.backup,
            backup_path=path,
            sql=sql,
            sql_error=error,
            restore_default=default,
            recommended="restore" if irreversible else "downgrade",
        )

    @property
    def reading(self) -> signals.Reading:
        """What the checks are built with for the plan: they are listed, never read."""
        return signals.Reading(self.runner, datetime.now(UTC), self.ctx.incident.target)

    def _verify_check(self, check: Check, out: list[str], name: str, note: str) -> None:
        """A logs or smoke check in the plan: its command on its host, or why there is none."""
        host = str(getattr(check, "host", ""))  # each of these kinds is one host's
        if isinstance(check, Unreadable):
            out.append(f"{host}: {check.reason}")
            return
        out.append(f"{host}: {check.query}")
        changes = name == "smoke"  # a smoke test may act on the app; reading logs does not
        self.add(StepId.VERIFY, host, Planned(name, check.query, changes=changes, note=note))

    def _checks(self) -> PlanChecks:
        app = self.app
        # The checks Verify will judge, from the checks' one registry, each as it will be read.
        try:
            urls = [c.name for c in signals.app_checks(app, self.reading, ("health",))]
        except ValueError as exc:
            urls = [f"(refused: {exc})"]
        logs: list[str] = []
        note = "since the restart" if "{since}" in templates.template(app, "logs") else (
            "lines since the restart are checked")  # fmt: skip
        for c in signals.app_checks(app, self.reading, ("logs",)):
            self._verify_check(c, logs, "logs", note)
        smoke: list[str] = []
        for c in signals.app_checks(app, self.reading, ("smoke",)):
            self._verify_check(c, smoke, "smoke", "must exit 0")
        hosts = strategy(app.deploy.strategy).deploy_hosts(app)  # where the monitor reads
        now = datetime.now(UTC)
        every = f"every {app.monitor.interval:g}s for {app.monitor.duration:g}s"
        for host in hosts:
            self.add(StepId.MONITOR, host.name, Planned("clock", redeploy.CLOCK, changes=False))
        for host in hosts:
            cmd = verify.logs_command(app, host, now, 0)
            if cmd:
                self.add(StepId.MONITOR, host.name, Planned("logs", cmd, changes=False, note=every))
        return PlanChecks(
            health=urls,
            logs=logs,
            error_pattern=app.logs.error_pattern,
            smoke=smoke,
            monitor_duration=app.monitor.duration,
            monitor_interval=app.monitor.interval,
            failure_streak=app.monitor.failure_streak,
            signals=signals.planned(app, self.ctx.incident.target),
        )


def approvals(app: AppConfig, incident: Incident, migrations: bool) -> list[PlanApproval]:
    """The questions the incident will ask, from the state machine's own gates."""
    operators = sorted({*app.operators, *app.approvers})
    four_eyes = "; four-eyes: not the person who started it" if app.production else ""
    out: list[PlanApproval] = []
    for step in ORDER:
        if step in (StepId.DB_PREPARE, StepId.DB_ROLLBACK) and not migrations:
            continue
        kind = gate_for(incident, step)
        if kind is GateKind.DECISION:
            out.append(
                PlanApproval(
                    question="Roll back or fix forward?",
                    buttons="Roll back / Fix forward",
                    who=operators,
                    rule="an operator or an approver",
                )
            )
        elif kind is GateKind.APPROVE_START:
            out.append(
                PlanApproval(
                    question="Start the rollback (production)",
                    buttons="Approve",
                    who=sorted(app.approvers),
                    rule="an approver" + four_eyes,
                )
            )
        elif kind is GateKind.APPROVE_DB:
            out.append(
                PlanApproval(
                    question="Roll back the database: the downgrade, or a restore from a backup",
                    buttons="Approve downgrade / Restore",
                    who=sorted(app.approvers),
                    rule="an approver" + four_eyes,
                )
            )
    out.append(
        PlanApproval(
            question="If a step fails: Retry or Abort",
            buttons="Retry / Abort",
            who=operators,
            rule="an operator or an approver; a retry of the database step needs an approver",
        )
    )
    return out


def _mmss(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"


def estimate(history: list[Incident]) -> str:
    """How long this app's earlier rollbacks took, or "no history"."""
    done = [i for i in history if i.status is Status.COMPLETED and i.finished_at is not None]
    if not done:
        return "no history"
    totals = [(i.finished_at - i.created_at).total_seconds() for i in done if i.finished_at]
    working = [
        sum(
            (r.finished_at - r.started_at).total_seconds()
            for r in i.steps
            if r.started_at and r.finished_at
        )
        for i in done
    ]
    median, steps = statistics.median(totals), statistics.median(working)
    span = f"{_mmss(min(totals))}–{_mmss(max(totals))}" if len(totals) > 1 else _mmss(totals[0])
    return (
        f"about {_mmss(median)} (median of {len(done)} earlier completed rollback(s) of this "
        f"app: {span}); the steps themselves took {_mmss(steps)}, the rest waited for people"
    )
