"""`/rollback plan`: the plan as Rewind would run it, made without changing anything."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config.apps_file import parse_apps
from bot.incidents.service import IncidentService
from bot.plan.build import Planner, estimate
from bot.plan.render import markdown
from bot.store.redis_store import RedisStore, connect
from bot.workflow.errors import UserFacingError
from bot.workflow.machine import new_steps
from bot.workflow.model import Incident, Status
from bot.workflow.plan import Plan
from bot.workflow.policy import Actor
from bot.workflow.version import Version
from runners.git import GitRepos
from runners.local import runner_for
from tests.fakes import RecordingNotifier, with_step_commands
from tests.fixtures_hosts import SshEnv, TestHost
from tests.harness import INCIDENT_CHANNEL, Bot
from tests.slack_fake import buttons
from tests.test_workflow_e2e import config as e2e_config
from tests.test_workflow_e2e import db_revision, origin_branches

# What planning may send to a host: each only reads.
READ_ONLY = re.compile(
    r"^cd \S+ && ("
    r"git describe --tags --always"
    r"|alembic -c alembic\.ini current"
    r"|alembic -c alembic\.ini downgrade --sql \S+"
    r"|git reflog -1 --date=unix --format=%gd HEAD"
    r"|ls -1t \S+"
    r"|stat -c '%s %Y %n' -- .+"
    r")$"
)


class _Queue:
    async def enqueue_step(self, incident_id: str, step: Any, attempt: int) -> None:
        raise AssertionError("planning enqueued a step")

    async def hand_over(self, incident_id: str, step: Any, attempt: int) -> None:
        raise AssertionError("planning handed a step over")


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    s = RedisStore(connect(redis_url))
    yield s
    await s.r.aclose()


def planner_for(env: SshEnv, store: RedisStore, tmp_path: Path, **extra: Any) -> Planner:
    cfg = with_step_commands(env.app_config())
    cfg.update(extra)
    apps = parse_apps({"apps": {"myapp": cfg}}, "test")
    incidents = IncidentService(
        apps=apps,
        store=store,
        notifier=RecordingNotifier(),
        queue=_Queue(),
        repos=GitRepos(tmp_path / "workspace"),
    )
    return Planner(incidents, runner_for, tmp_path / "workspace")


def origin_refs(env: SshEnv) -> str:
    assert env.repo is not None
    return subprocess.run(
        ["git", "--git-dir", str(env.repo.origin), "show-ref"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def checkout(host: TestHost) -> str:
    return host.run("git rev-parse HEAD && git status --porcelain && git stash list")


CAROL = Actor("U0CAROL")


async def test_a_plan_reads_only_and_changes_nothing(
    ssh_env_migrated: SshEnv, store: RedisStore, tmp_path: Path
) -> None:
    env = ssh_env_migrated
    assert env.db_url
    before = (origin_refs(env), db_revision(env.db_url), [checkout(h) for h in env.hosts])
    plan = await planner_for(env, store, tmp_path).plan("myapp", Version("v1.4.2"), CAROL)

    reads = [(h.name, c) for h in env.hosts for c in sent(h)]
    assert reads, "planning read nothing from the hosts"
    assert [c for _, c in reads if not READ_ONLY.match(c)] == []
    assert sorted(reads) == sorted((p.host, p.command) for p in plan.probes)
    after = (origin_refs(env), db_revision(env.db_url), [checkout(h) for h in env.hosts])
    assert after == before
    assert await store.lock_holder("myapp") is None
    assert await store.load(plan.id) is None  # no incident either

    text = markdown(plan)
    assert plan.basis.deployed_by_host == {"web1": "v1.5.0", "web2": "v1.5.0"}
    assert plan.basis.db_revision == "d4e5f6a1b2c3"
    assert "DROP TABLE coupons" in plan.database.sql if plan.database else False
    assert f"hotfix/rollback-myapp-v1.4.2-{plan.id}" in text
    assert "no history" in text
    assert "its logs are checked as soon as that host is redeployed" in text
    print(text)


async def test_a_plan_is_refused_as_rollback_refuses_it(
    ssh_env: SshEnv, store: RedisStore, tmp_path: Path
) -> None:
    planner = planner_for(ssh_env, store, tmp_path)
    with pytest.raises(UserFacingError, match="neither a tag nor a commit"):
        await planner.plan("myapp", Version("v9.9.9"), CAROL)
    with pytest.raises(UserFacingError, match="don't know an app called `nope`"):
        await planner.plan("nope", None, CAROL)
    with pytest.raises(UserFacingError, match="not an operator or approver"):
        await planner.plan("myapp", Version("v1.4.2"), Actor("U0MALLORY"))
    assert [c for h in ssh_env.hosts for c in h.commands()] == []


# ---- through Slack, as people use it ------------------------------------------------------

STAMP = re.compile(r"\d{8}T\d{6}Z")
# A host's commands may travel as one remote script (runners/script.py), each on lines of its own
# between `(` and `) </dev/null 2>&1`: what the host was sent is each of those commands.
_IN_SCRIPT = re.compile(r"^\(\n(.*?)\n\) </dev/null 2>&1$", re.S | re.M)
_DEFERRED = 'eval "$(printf \'%b\' "$rw_c")"'


def sent(host: TestHost) -> list[str]:
    out: list[str] = []
    for command in host.commands():
        out += _IN_SCRIPT.findall(command) or [command]
    # A deferred command's text reaches the host over the script's stdin, not the command line
    # (monitoring's log reads, written once the host's clock is read): not seen here.
    return [c for c in out if c != _DEFERRED]


def _norm(command: str) -> str:
    return STAMP.sub("<time>", command)


async def plan_via_slack(bot: Bot, text: str = "plan myapp v1.4.2") -> tuple[Plan, dict[str, Any]]:
    _, name = await bot.command(text, user="U0CAROL")
    said = await bot.reply(name, timeout=60)
    assert "Plan `" in said and "Nothing was changed" in said, said
    plan_id = said.split("Plan `", 1)[1].split("`", 1)[0]
    raw = await bot.runtime.store.load_plan(plan_id)
    assert raw is not None
    message = next(
        m
        for m in bot.slack.messages(INCIDENT_CHANNEL, top_level=True)
        if any(b.text == "Run this plan" for b in buttons(m))
    )
    return Plan.model_validate_json(raw), message


def plan_file(bot: Bot, plan: Plan, message: dict[str, Any]) -> str:
    [f] = [f for f in bot.slack.files if plan.id in f.filename]
    assert f.channel_id == INCIDENT_CHANNEL and f.thread_ts == message["ts"]
    return f.content.decode()


@pytest.mark.timeout(300)  # a whole rollback with a database; slow on a loaded machine
async def test_the_plan_names_every_command_the_incident_then_runs(
    make_bot: Any, ssh_env_migrated: SshEnv
) -> None:
    env = ssh_env_migrated
    assert env.db_url
    before = (origin_refs(env), db_revision(env.db_url), [checkout(h) for h in env.hosts])
    async with make_bot({"myapp": e2e_config(env)}) as bot:
        plan, message = await plan_via_slack(bot)
        text = plan_file(bot, plan, message)

        # Planning: read-only commands only, nothing moved, no lock, no incident.
        reads = [c for h in env.hosts for c in sent(h)]
        assert reads and [c for c in reads if not READ_ONLY.match(c)] == []
        after = (origin_refs(env), db_revision(env.db_url), [checkout(h) for h in env.hosts])
        assert after == before
        assert await bot.runtime.store.lock_holder("myapp") is None
        assert await bot.runtime.store.recent_incidents(5) == []
        assert "DROP TABLE coupons" in text and "IRREVERSIBLE" not in text
        assert plan.database is not None and plan.database.backup_path in text
        for c in plan.commands:
            assert c.command in text

        for h in env.hosts:
            h.clear_commands()
        _, name = await bot.click(message, "Run this plan", "U0CAROL")
        assert f"Incident `{plan.id}` opened from plan" in await bot.reply(name)
        decision = await bot.gate("Roll back")
        await bot.said("Nothing plan", "has changed")
        await bot.click(decision, "Roll back", "U0CAROL")
        await bot.click(await bot.gate("Approve downgrade", timeout=90), "Approve", "U0ALICE")
        incident = await bot.wait_status("completed", timeout=120)
        assert incident.id == plan.id
        assert f"hotfix/rollback-myapp-v1.4.2-{plan.id}" in origin_branches(env)

    planned = {(c.host, _norm(c.command)) for c in plan.commands}
    ran = [(h.name, _norm(c)) for h in env.hosts for c in sent(h)]
    assert ran
    assert [r for r in ran if r not in planned] == []
    conditional = {"install"}  # skipped when the dependency file did not change
    must = {(c.host, _norm(c.command)) for c in plan.commands if c.name not in conditional}
    assert sorted(must - set(ran)) == []


async def test_run_this_plan_says_what_changed_before_anything_runs(
    make_bot: Any, ssh_env: SshEnv
) -> None:
    async with make_bot({"myapp": e2e_config(ssh_env)}) as bot:
        plan, message = await plan_via_slack(bot)
        web2 = ssh_env.hosts[1]
        web2.run("git checkout --quiet --force v1.4.0")
        web2.clear_commands()
        _, name = await bot.click(message, "Run this plan", "U0CAROL")
        assert "opened from plan" in await bot.reply(name)
        await bot.gate("Roll back")
        await bot.said(
            f"Changed since plan `{plan.id}`", "web2 was on v1.5.0 in the plan, now on v1.4.0"
        )
        # Assess read the hosts again; nothing that changes them ran before the decision.
        assert [c for c in sent(web2) if not READ_ONLY.match(c)] == []
        _, again = await bot.click(message, "Run this plan", "U0ALICE")
        assert "already run" in await bot.reply(again)


async def test_plans_are_refused_as_rollback_refuses(make_bot: Any, ssh_env: SshEnv) -> None:
    async with make_bot({"myapp": e2e_config(ssh_env)}) as bot:
        cases = [
            ("myapp v9.9.9", "U0CAROL"),  # unknown version
            ("nope v1.4.2", "U0CAROL"),  # unknown app
            ("myapp v1.4.2", "U0MALLORY"),  # no rights
        ]
        for args, user in cases:
            _, planned = await bot.command(f"plan {args}", user=user)
            _, started = await bot.command(f"{args} checkout returns 500", user=user)
            refusal = await bot.reply(started)
            assert ":warning:" in refusal
            assert await bot.reply(planned) == refusal
        _, message = await plan_via_slack(bot)
        _, name = await bot.click(message, "Run this plan", "U0MALLORY")
        assert "not an operator or approver" in await bot.reply(name)
        assert await bot.runtime.store.recent_incidents(5) == []
        assert await bot.runtime.store.lock_holder("myapp") is None
    assert [c for h in ssh_env.hosts for c in sent(h) if not READ_ONLY.match(c)] == []


# ---- the terminal, the irreversible, production, history ----------------------------------


def test_rollback_plan_from_the_terminal_prints_it_and_changes_nothing(
    ssh_env: SshEnv, redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "apps.yaml"
    apps = {"myapp": e2e_config(ssh_env), "prod": e2e_config(ssh_env, environment="production")}
    path.write_text(yaml.safe_dump({"apps": apps, "incidents": {"dir": str(tmp_path / "inc")}}))
    env = {
        **os.environ,
        "REWIND_CONFIG": str(path),
        "REDIS_URL": redis_url,
        "REWIND_WORKSPACE": str(tmp_path / "ws"),
    }

    def plan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "rollback", *args, "--plan"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    before = [checkout(h) for h in ssh_env.hosts]
    proc = plan("myapp")  # no version: the tag before the deployed one, as /rollback picks it
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "# Rollback plan" in proc.stdout and "myapp → v1.4.2" in proc.stdout
    assert "git fetch --tags --force origin hotfix/rollback-myapp-v1.4.2-" in proc.stdout
    assert "Nothing was changed" in proc.stdout
    saved = list((tmp_path / "ws" / "files").glob("plan-myapp-v1.4.2-*.md"))
    assert len(saved) == 1 and "## 4. Every command, in order" in saved[0].read_text()
    assert [c for h in ssh_env.hosts for c in sent(h) if not READ_ONLY.match(c)] == []
    assert [checkout(h) for h in ssh_env.hosts] == before
    assert not list((tmp_path / "ws" / "plans").iterdir())  # the scratch clone is gone

    prod = plan("prod", "v1.4.2")  # a plan changes nothing: no --break-glass, in production too
    assert prod.returncode == 0, prod.stdout[-3000:] + prod.stderr[-3000:]
    assert "--break-glass" not in prod.stdout and "Nothing was changed" in prod.stdout
    unknown = plan("myapp", "v9.9.9")
    assert unknown.returncode == 1 and "neither a tag nor a commit" in unknown.stdout


async def test_irreversible_migrations_are_marked_and_production_asks_four_eyes(
    make_ssh_env: Any,
    sample_repo_irreversible: Any,
    pg_database: str,
    store: RedisStore,
    tmp_path: Path,
) -> None:
    repo = sample_repo_irreversible
    env = make_ssh_env(2, repo=repo, ref="v1.6.0", db_url=pg_database, migrate=True)
    planner = planner_for(env, store, tmp_path, environment="production")
    plan = await planner.plan("myapp", Version("v1.4.2"), Actor("U0ALICE"))
    text = markdown(plan)
    assert plan.database is not None and plan.database.recommended == "restore"
    assert [m.revision for m in plan.database.migrations if m.irreversible]
    assert "**IRREVERSIBLE**" in text and "recommend a restore" in text
    questions = {a.question: a for a in plan.approvals}
    start = questions["Start the rollback (production)"]
    assert start.who == ["U0ALICE", "U0BOB"] and "four-eyes" in start.rule
    assert "four-eyes" in questions[next(q for q in questions if "database" in q)].rule
    assert [c for h in env.hosts for c in sent(h) if not READ_ONLY.match(c)] == []


def test_the_estimate_comes_from_this_apps_earlier_incidents() -> None:
    assert estimate([]) == "no history"
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def done(minutes: int, status: Status = Status.COMPLETED) -> Incident:
        steps = new_steps()
        steps[1].started_at, steps[1].finished_at = start, start + timedelta(seconds=30)
        return Incident(
            id=f"i{minutes}", app="myapp", environment="staging", requested_version=None,
            requested_by="U0CAROL", steps=steps, status=status, created_at=start,
            finished_at=start + timedelta(minutes=minutes),
        )  # fmt: skip

    assert estimate([done(9, Status.ABORTED)]) == "no history"
    said = estimate([done(4), done(6), done(20)])
    assert said.startswith("about 6m00s (median of 3 earlier completed rollback(s)")
    assert "4m00s–20m00s" in said and "took 0m30s" in said
