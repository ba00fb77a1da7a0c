"""A release group as one incident (issue 22), its coordination on the real incident service
and step runner with an in-memory store and recorded step bodies: one decision, one approval,
each app in the group's order, the shared database's steps once, abort-all, all locks or none.
(The same on real hosts, Redis and Slack: tests/test_group_rollback.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.apps_file import parse_apps
from bot.incidents.groups import GroupRequest
from bot.incidents.host_runners import HostRunners
from bot.incidents.service import IncidentService, OpenRequest
from bot.incidents.step_runner import StepRunner
from bot.steps.context import Outcome, StepBody, StepContext
from bot.store.memory import MemoryStore
from bot.views.incident import checklist_lines
from bot.workflow.errors import StepError, UserFacingError
from bot.workflow.machine import Answer
from bot.workflow.messages import Message, words
from bot.workflow.model import Criterion, GateKind, Incident, Status, StepId, StepStatus
from bot.workflow.plan import GroupPlan, Plan, PlanBasis, PlanChecks
from bot.workflow.policy import Actor
from bot.workflow.render_text import plain
from bot.workflow.said import NAMES_ITSELF
from bot.workflow.version import Version
from runners.git import GitRepos
from runners.local import LocalRunner
from tests.fakes import RecordingNotifier
from tests.test_engine import RecordingQueue


def _app(tmp: Path, env: str, db: str | None) -> dict[str, object]:
    app: dict[str, object] = {
        "repo": str(tmp), "incident_channel": "C1", "operators": ["U0CAROL"],
        "approvers": ["U0ALICE", "U0BOB"], "environment": env, "ssh": {"transport": "local"},
        "hosts": [{"name": "w1", "address": "127.0.0.1"}],
        "deploy": {"strategy": "commands", "workdir": str(tmp), "commands": {
            "fetch": "true", "install": "true", "restart": "true", "status": "true",
            "version": "true"}},
    }  # fmt: skip
    if db:
        app["database"] = {"run_on": "w1", "name": db}
    return app


class Group:
    def __init__(self, tmp: Path, fail: set[tuple[str, StepId]] | None = None) -> None:
        self.apps = parse_apps(
            {"apps": {"web": _app(tmp, "production", "shopdb"), "api": _app(tmp, "staging",
             "shopdb"), "solo": _app(tmp, "staging", None)}, "groups": {"shop": ["web", "api"]}},
            "test",
        )  # fmt: skip
        self.calls: list[tuple[str, StepId]] = []
        self.fail = fail or set()
        self.queue, self.store = RecordingQueue(), MemoryStore()
        self.notifier = RecordingNotifier()
        self.service = IncidentService(
            apps=self.apps, store=self.store, notifier=self.notifier, queue=self.queue,
            repos=GitRepos(tmp),
        )  # fmt: skip
        bodies = {s: self._body(s) for s in StepId}
        self.runner = StepRunner(
            self.service, runners=HostRunners(LocalRunner), workspace=tmp, bodies=bodies
        )

    def _body(self, step: StepId) -> StepBody:
        async def run(ctx: StepContext) -> Outcome:
            self.calls.append((ctx.app.name, step))
            if (ctx.app.name, step) in self.fail:
                self.fail.discard((ctx.app.name, step))
                raise StepError(f"{step} failed", host="w1")
            met = dict.fromkeys(Criterion, True) if step is StepId.REPORT else {}
            return Outcome(summary=f"{ctx.app.name} {step} done", criteria=met)

        return run

    async def drain(self) -> None:
        while self.queue.jobs:
            job = self.queue.jobs.pop(0)
            await self.runner.run_step(*job)

    async def load(self, incident_id: str) -> Incident:
        found = await self.store.load(incident_id)
        assert found is not None
        return found

    async def answer(self, incident_id: str, choice: str, user: str) -> None:
        inc = await self.load(incident_id)
        assert inc.gate is not None, inc.status
        await self.service.answer(incident_id, Answer(inc.gate.token, Actor(user), choice))
        await self.drain()

    async def open(self) -> list[Incident]:
        req = GroupRequest("shop", "release 42 broke checkout", Actor("U0CAROL"))
        lead = await self.service.groups.open(req)
        await self.drain()
        assert lead.group is not None
        return [await self.load(i) for i in lead.group.members]


async def test_one_decision_one_approval_the_groups_order_and_the_database_once(
    tmp_path: Path,
) -> None:
    g = Group(tmp_path)
    web, api = await g.open()
    assert (web.app, api.app) == ("web", "api")
    assert web.thread == api.thread  # one thread
    # Every member assessed; only the lead asks, once.
    assert {(a, s) for a, s in g.calls} >= {("web", StepId.ASSESS), ("api", StepId.ASSESS)}
    asked = [gate.kind for gate in g.notifier.asked]
    assert asked == [GateKind.DECISION]
    # The one decision says what rolling back means for every app, as asked (not only the lead's).
    decision = g.notifier.questions[0]
    assert "The group `shop` (`web`, `api`)" in decision, decision
    assert "    `web` (production): " in decision and "    `api` (staging): " in decision, decision
    api = await g.load(api.id)
    assert api.gate is not None and api.gate.kind is GateKind.GROUP
    # The group's rights: an operator of every member decides; four-eyes (web is production).
    await g.answer(web.id, "roll_back", "U0CAROL")
    assert [gate.kind for gate in g.notifier.asked] == [GateKind.DECISION, GateKind.APPROVE_START]
    with pytest.raises(UserFacingError, match="Only an approver of web"):
        await g.answer(web.id, "approve", "U0CAROL")
    await g.answer(web.id, "approve", "U0ALICE")
    # web's database is shared with api, which comes last: web skips its database steps.
    web = await g.load(web.id)
    assert web.step(StepId.DB_ROLLBACK).status is StepStatus.SKIPPED
    assert "downgraded once, by `api`" in web.step(StepId.DB_ROLLBACK).summary
    # api's code starts only after web is verified; then its own database approval, after its
    # redeploy (a git checkout: the downgrade runs in a scratch copy of the deployed commit).
    assert g.calls.index(("web", StepId.VERIFY)) < g.calls.index(("api", StepId.CODE))
    api = await g.load(api.id)
    assert api.gate is not None and api.gate.kind is GateKind.APPROVE_DB
    await g.answer(api.id, "approve", "U0ALICE")
    done = [(a, s) for a, s in g.calls if s in {StepId.REDEPLOY, StepId.DB_ROLLBACK}]
    assert done == [("web", StepId.REDEPLOY), ("api", StepId.REDEPLOY), ("api", StepId.DB_ROLLBACK)]
    # The monitor once every app is verified.
    first_monitor = min(i for i, (_, s) in enumerate(g.calls) if s is StepId.MONITOR)
    assert g.calls.index(("api", StepId.VERIFY)) < first_monitor
    web, api = await g.load(web.id), await g.load(api.id)
    assert (web.status, api.status) == (Status.COMPLETED, Status.COMPLETED)
    # The lead's parent: a row per app under each step.
    lines = [plain(Message((p,))) for p in checklist_lines(web)]
    i = lines.index("Redeploy previous version")
    assert lines[i + 1].endswith("`web` — web redeploy done")
    assert lines[i + 2].endswith("`api` — api redeploy done")
    assert not await g.store.lock_holder("web") and not await g.store.lock_holder("api")
    # In the one thread, a member's messages name its app; the group's decision and its one
    # approval (asked by the lead for every member) name none.
    group_own = [
        "<@U0CAROL> chose *Roll back*.",
        ":white_check_mark: <@U0ALICE> approved the start of the rollback.",
    ]
    said = g.notifier.said
    unnamed = [s for s in said if not s.startswith(("`web` · ", "`api` · "))
               and not any(f"`{a}`" in s[:NAMES_ITSELF] for a in ("web", "api"))]  # fmt: skip
    assert unnamed == group_own, said
    assert any(s.startswith("The shared database `shopdb` is backed up by `api`") for s in said)
    assert "`api` · :white_check_mark: <@U0ALICE> approved the database downgrade." in said
    assert "❄️ `web` is now frozen" in g.notifier.text  # named by itself: not twice
    assert "`web` · ❄️" not in g.notifier.text
    # Alerts and files enter the thread the same way (the monitor's, the SQL preview's).
    await g.service.notifier.alert(api, words("error rate 12%"))
    await g.service.notifier.upload(api, "down.sql", "-- sql", title="alembic downgrade --sql")
    assert g.notifier.alerts == ["`api` · error rate 12%"]
    assert g.notifier.uploads[-1].comment == "`api` · alembic downgrade --sql"


async def test_a_failing_member_pauses_the_group_and_abort_stops_all(tmp_path: Path) -> None:
    g = Group(tmp_path, fail={("api", StepId.REDEPLOY)})
    web, api = await g.open()
    await g.answer(web.id, "roll_back", "U0CAROL")
    await g.answer(web.id, "approve", "U0ALICE")
    api = await g.load(api.id)  # its redeploy fails before its database is asked about
    assert api.status is Status.PAUSED and api.gate is not None
    web = await g.load(web.id)
    assert web.status is Status.WAITING  # held before its monitor: the group is paused
    assert not any(s is StepId.MONITOR for _, s in g.calls)
    await g.answer(api.id, "abort", "U0CAROL")
    web, api = await g.load(web.id), await g.load(api.id)
    assert (web.status, api.status) == (Status.ABORTED, Status.ABORTED)
    assert "Stopped with its group (`api` was aborted)" in web.outcome
    assert "Rolled back: Roll back code, Redeploy previous version, Verify rollback" in web.outcome
    assert "Rolled back: Roll back code, Back up database, preview downgrade." in api.outcome
    assert "Stopped mid-way: Redeploy previous version" in api.outcome


async def test_retry_resumes_the_group(tmp_path: Path) -> None:
    g = Group(tmp_path, fail={("web", StepId.VERIFY)})
    web, api = await g.open()
    await g.answer(web.id, "roll_back", "U0CAROL")
    await g.answer(web.id, "approve", "U0ALICE")
    assert ("api", StepId.CODE) not in g.calls  # paused before the next app
    await g.answer(web.id, "retry", "U0CAROL")
    await g.answer(api.id, "approve", "U0ALICE")
    web, api = await g.load(web.id), await g.load(api.id)
    assert (web.status, api.status) == (Status.COMPLETED, Status.COMPLETED)


async def test_all_locks_or_none_a_busy_member_refuses_the_group(tmp_path: Path) -> None:
    g = Group(tmp_path)
    busy = await g.service.open(OpenRequest("api", None, "its own trouble", Actor("U0CAROL")))
    with pytest.raises(UserFacingError, match=f"`api` already has an open incident `{busy.id}`"):
        await g.service.groups.open(GroupRequest("shop", "release broke", Actor("U0CAROL")))
    assert await g.store.lock_holder("web") is None  # no partial lock
    assert [i.app for i in await g.store.open_incidents()] == ["api"]


async def test_the_group_needs_rights_on_every_member(tmp_path: Path) -> None:
    g = Group(tmp_path)
    with pytest.raises(UserFacingError, match="needs this right on each of its apps"):
        await g.service.groups.open(GroupRequest("shop", "release broke", Actor("U0NOBODY")))
    pins = (("solo", Version("v1")),)
    with pytest.raises(UserFacingError, match="`solo` is not an app of the group"):
        g.service.groups.check_request(GroupRequest("shop", "broke", Actor("U0CAROL"), pins))


async def test_a_move_lost_with_a_dead_process_is_made_when_a_worker_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = Group(tmp_path)
    web, api = await g.open()

    async def lost(incident: Incident) -> None:  # the process died before the group's move
        return None

    with monkeypatch.context() as m:
        m.setattr(g.service.groups, "sync", lost)
        inc = await g.load(web.id)
        assert inc.gate is not None
        await g.service.answer(web.id, Answer(inc.gate.token, Actor("U0CAROL"), "roll_back"))
    api = await g.load(api.id)
    assert api.decision is None and api.gate is not None and api.gate.kind is GateKind.GROUP
    await g.service.reconcile()  # what a worker does when it starts
    api = await g.load(api.id)
    assert api.decision is not None and api.decision.value == "roll_back"


async def test_status_of_a_group_lists_each_apps_incident(tmp_path: Path) -> None:
    from bot.fronts.command import parse
    from bot.fronts.dispatch import Dispatcher, Listing

    g = Group(tmp_path)
    none = await Dispatcher(g.service, g.store, None).run(parse("status shop"), Actor("U0CAROL"))  # type: ignore[arg-type]
    assert isinstance(none, Listing) and none.empty == "The group `shop` has no incidents."
    web, api = await g.open()
    dispatcher = Dispatcher(g.service, g.store, None)  # type: ignore[arg-type]
    found = await dispatcher.run(parse("status shop"), Actor("U0CAROL"))
    assert isinstance(found, Listing)
    assert [(i.app, i.id) for i in found.incidents] == [("web", web.id), ("api", api.id)]


def _plan(app: str, plan_id: str, method: str = "tag") -> Plan:
    basis = PlanBasis(
        deployed_by_host={"w1": "v1.5.0"}, deployed_sha="a" * 40, target="v1.4.2",
        target_sha="b" * 40, db_revision="r2", code_method=method,
    )  # fmt: skip
    checks = PlanChecks(
        health=[], logs=[], error_pattern="", smoke=[], monitor_duration=1,
        monitor_interval=1, failure_streak=1,
    )  # fmt: skip
    return Plan(
        id=plan_id, app=app, environment="staging", requested_version=None, by="U0CAROL",
        reason="release 42 broke checkout", basis=basis, deployed="v1.5.0", branch="b",
        checks=checks,
    )  # fmt: skip


async def test_run_this_plan_opens_the_group_as_planned_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.fronts.dispatch import Dispatcher

    g = Group(tmp_path)

    async def exists(app: object, version: Version) -> None:  # the repo is not the point here
        assert str(version) == "v1.4.2"

    monkeypatch.setattr(g.service, "check_version_exists", exists)
    dispatcher = Dispatcher(g.service, g.store, None)  # type: ignore[arg-type]
    group = GroupPlan(
        id="g1", group="shop", plans=[_plan("web", "p1", "revert"), _plan("api", "p2")], order=[]
    )
    await g.store.save_plan(group.id, group.model_dump_json(), 60)
    # The group's checks: rights on every member; nothing locked, nothing opened.
    with pytest.raises(UserFacingError, match="needs this right on each of its apps"):
        await dispatcher.run_group_plan("g1", "shop", Actor("U0NOBODY"))
    assert await g.store.lock_holder("web") is None and await g.store.recent_incidents(5) == []

    # A busy member refuses it: all locks or none.
    busy = await g.service.open(OpenRequest("api", None, "its own trouble", Actor("U0CAROL")))
    with pytest.raises(UserFacingError, match=f"`api` already has an open incident `{busy.id}`"):
        await dispatcher.run_group_plan("g1", "shop", Actor("U0CAROL"))
    assert await g.store.lock_holder("web") is None
    await g.service.cancel(busy.id, Actor("U0CAROL"))
    g.queue.jobs.clear()

    opened = await dispatcher.run_group_plan("g1", "shop", Actor("U0CAROL"))
    await g.drain()
    assert opened.incident.id == "p1" and opened.group.id == "g1"
    web, api = await g.load("p1"), await g.load("p2")
    # Each member under its plan's id, pinned to its target, with its plan's basis.
    assert web.group is not None and web.group.members == ["p1", "p2"]
    assert (web.requested_version, api.requested_version) == ("v1.4.2", "v1.4.2")
    assert web.facts.plan == group.plans[0].basis and api.facts.plan == group.plans[1].basis
    assert (web.facts.code_method, api.facts.code_method) == ("revert", "tag")
    assert web.reason == "release 42 broke checkout"
    await g.answer("p1", "roll_back", "U0CAROL")  # one decision, then four-eyes (web: prod)
    assert [gate.kind for gate in g.notifier.asked][-1] is GateKind.APPROVE_START
    with pytest.raises(UserFacingError, match="This plan was already run: incident `p1`"):
        await dispatcher.run_group_plan("g1", "shop", Actor("U0CAROL"))

    # A plan no longer kept says so, and what to do.
    with pytest.raises(UserFacingError, match=r"no longer kept .*`/rollback plan shop`"):
        await dispatcher.run_group_plan("gone", "shop", Actor("U0CAROL"))
    # A group changed since its plan was made is not run from it.
    changed = GroupPlan(id="g2", group="shop", plans=[_plan("web", "p3")], order=[])
    await g.store.save_plan(changed.id, changed.model_dump_json(), 60)
    with pytest.raises(UserFacingError, match="changed since plan `g2` was made"):
        await dispatcher.run_group_plan("g2", "shop", Actor("U0CAROL"))
