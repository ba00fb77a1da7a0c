"""`/rollback plan`: the plan as Rewind would run it, made without changing anything."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.apps import parse_apps
from bot.engine import Engine
from bot.errors import UserFacingError
from bot.plan.build import Planner
from bot.plan.render import markdown
from bot.store_redis import RedisStore, connect
from bot.workflow.policy import Actor
from runners.local import runner_for
from tests.fakes import RecordingNotifier, with_step_commands
from tests.fixtures_hosts import SshEnv, TestHost
from tests.test_workflow_e2e import db_revision

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


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    s = RedisStore(connect(redis_url))
    yield s
    await s.r.aclose()


def engine_for(env: SshEnv, store: RedisStore, tmp_path: Path, **extra: Any) -> Engine:
    cfg = with_step_commands(env.app_config())
    cfg.update(extra)
    apps = parse_apps({"apps": {"myapp": cfg}}, "test")
    return Engine(
        apps=apps,
        store=store,
        notifier=RecordingNotifier(),
        queue=_Queue(),
        workspace=tmp_path / "workspace",
        runner_factory=runner_for,
    )


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
    engine = engine_for(env, store, tmp_path)
    plan = await Planner(engine).plan("myapp", "v1.4.2", CAROL)

    sent = [(h.name, c) for h in env.hosts for c in h.commands()]
    assert sent, "planning read nothing from the hosts"
    assert [c for _, c in sent if not READ_ONLY.match(c)] == []
    assert sorted(sent) == sorted((p.host, p.command) for p in plan.probes)
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
    print(text)


async def test_a_plan_is_refused_as_rollback_refuses_it(
    ssh_env: SshEnv, store: RedisStore, tmp_path: Path
) -> None:
    engine = engine_for(ssh_env, store, tmp_path)
    planner = Planner(engine)
    with pytest.raises(UserFacingError, match="neither a tag nor a commit"):
        await planner.plan("myapp", "v9.9.9", CAROL)
    with pytest.raises(UserFacingError, match="don't know an app called `nope`"):
        await planner.plan("nope", None, CAROL)
    with pytest.raises(UserFacingError, match="not an operator or approver"):
        await planner.plan("myapp", "v1.4.2", Actor("U0MALLORY"))
    assert [c for h in ssh_env.hosts for c in h.commands()] == []
