"""`/rollback GROUP` end to end when the shared database's app keeps its releases
(`deploy.releases`): its downgrade (or restore) runs after every app using the database is
redeployed, its own included, in the kept release of the version rolled back from. Apart from
tests/test_group_rollback.py so that the two files run on two test processes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from bot.sample.hosts import libpq_url
from bot.workflow.model import Status, StepId
from bot.workflow.plan import Plan
from tests.fixtures_hosts import MakeSshEnv, SshEnv
from tests.harness import Bot
from tests.processes import Workers
from tests.slack_fake import SlackFake
from tests.test_db_steps import backup_dir, old_backup
from tests.test_group_rollback import (
    DOWNGRADE,
    PLAN_ID,
    V142,
    V150,
    _index,
    group_bot,
    group_config,
    resumed_after_a_kill,
    roll_back,
    wait_members,
)
from tests.test_plan import _norm, sent
from tests.test_workflow_e2e import db_revision


@pytest.fixture
def release_kept(make_ssh_env: MakeSshEnv, pg_database: str) -> tuple[SshEnv, SshEnv]:
    """As `release`, but api (whose alembic downgrades the shared database) keeps its last 3
    releases: v1.5.0's release, with its newer revision files, stays on its host."""
    storefront = make_ssh_env(1, db_url=pg_database, migrate=True)
    api = make_ssh_env(1, db_url=pg_database, releases=3)
    return storefront, api


def running(env: SshEnv) -> str:
    """The version the host's app runs (in `current` when it keeps releases)."""
    return env.hosts[0].run("cat current/VERSION" if env.releases else "cat VERSION").strip()


@pytest.mark.timeout(400)
async def test_a_database_app_that_keeps_releases_downgrades_after_both_are_redeployed(
    slack: SlackFake, redis_url: str, tmp_path: Path, release_kept: tuple[SshEnv, SshEnv]
) -> None:
    storefront, api = release_kept
    assert storefront.db_url and db_revision(storefront.db_url) == V150
    kept_dir = f"{api.workdir}/releases/v1.5.0"
    async with group_bot(slack, redis_url, tmp_path, group_config(*release_kept)) as bot:
        # The plan: api backs the database up before its redeploy, downgrades it after, in
        # v1.5.0's kept release.
        _, name = await bot.command("plan shop")
        assert "is posted" in await bot.reply(name, timeout=120)
        # The order is in the plan's message in the incident channel (its file has the rest).
        said = bot.slack.all_text(bot.slack.messages("C0INCIDENT", top_level=True)[-1])
        assert (
            "2. `api` → `v1.4.2`: roll back code, back up the database `shopdb`, redeploy, "
            "downgrade the database `shopdb` once (its own approval; after `storefront` and "
            "`api` are redeployed: in the kept release of `v1.5.0`, which still holds the newer "
            "revision files), verify." in said
        ), said
        plans = {}
        for plan_id, app in PLAN_ID.findall(said):
            raw = await bot.runtime.store.load_plan(plan_id)
            assert raw is not None
            plans[app] = Plan.model_validate_json(raw)
        steps = [c.step for c in plans["api"].commands]
        redeploy_at = max(i for i, s in enumerate(steps) if s is StepId.REDEPLOY)
        downgrade_at = [i for i, s in enumerate(steps) if s is StepId.DB_ROLLBACK]
        assert downgrade_at and min(downgrade_at) > redeploy_at
        assert max(i for i, s in enumerate(steps) if s is StepId.DB_PREPARE) < redeploy_at
        for env in release_kept:
            env.hosts[0].clear_commands()

        await roll_back(bot)
        approval = await bot.gate("Approve downgrade", timeout=180)
        # Asked once both apps run v1.4.2: the database is still at v1.5.0's revision.
        for env in release_kept:
            assert running(env) == "1.4.2"
        assert db_revision(storefront.db_url) == V150
        await bot.click(approval, "Approve downgrade", "U0ALICE")
        web, back = await wait_members(bot, Status.COMPLETED)
        thread = await bot.said(f"in the kept release `{kept_dir}`")
        # The parent shows it as it ran: api's downgrade in a section after every redeploy.
        late = "Roll back database* — runs after Redeploy previous version"
        parent = await bot.parent_shows(late)
        redeploy = parent.index("*Redeploy previous version*")
        assert redeploy < parent.index("`api`", redeploy) < parent.index(late)
        assert parent.index(late) < parent.index("`api`", parent.index(late))
        assert "*Roll back database*\n" not in parent, parent

    for env in release_kept:
        assert running(env) == "1.4.2"
        assert env.hosts[0].health_status() == 200
    assert db_revision(storefront.db_url) == V142
    # The downgrade ran once, on api's host, in the kept release, after its redeploy switched
    # `current` to v1.4.2 and restarted it; storefront never ran it.
    assert [c for c in storefront.hosts[0].commands() if DOWNGRADE in c] == []
    ran = sent(api.hosts[0])
    downgrade = _index(ran, DOWNGRADE)
    assert ran[downgrade].startswith(f"cd {kept_dir} && ")
    assert _index(ran, "mv -T .current.tmp current") < downgrade
    assert _index(ran, "./run.sh restart") < downgrade
    assert api.hosts[0].run("readlink current").strip() == "releases/v1.4.2"
    # The members' records: storefront's redeploy and api's, then the downgrade.
    assert [r.id for r in back.steps].index(StepId.DB_ROLLBACK) == [r.id for r in back.steps].index(
        StepId.REDEPLOY
    ) + 1
    started = back.step(StepId.DB_ROLLBACK).started_at
    for member_ in (web, back):
        finished = member_.step(StepId.REDEPLOY).finished_at
        assert finished and started and finished < started, member_.app
    assert (
        "The shared database `shopdb` is backed up by `api` before its redeploy and downgraded "
        "once, after `storefront` and `api` are redeployed: in `api`'s kept release" in thread
    )
    # The plan named every command that ran, in the order they ran on api's host.
    for incident, env in zip((web, back), release_kept, strict=True):
        plan = plans[incident.app]
        done = [_norm(c.replace(incident.id, plan.id)) for c in sent(env.hosts[0])]
        planned = [_norm(c.command) for c in plan.commands]
        reads = {_norm(c.command) for c in plan.probes}  # Assess's reads, made while planning
        assert done and [r for r in done if r not in planned and r not in reads] == [], incident.app
        must = {c for c, p in zip(planned, plan.commands, strict=True) if p.name != "install"}
        assert sorted(must - set(done)) == [], incident.app
    planned_api = [_norm(c.command) for c in plans["api"].commands]
    first_downgrade = planned_api.index(next(c for c in planned_api if DOWNGRADE in c))
    assert planned_api.index(next(c for c in planned_api if "mv -T .current.tmp" in c)) < (
        first_downgrade
    )


@pytest.mark.timeout(400)
async def test_a_worker_killed_mid_redeploy_resumes_and_the_kept_release_downgrade_runs_once(
    slack: SlackFake,
    redis_url: str,
    tmp_path: Path,
    release_kept: tuple[SshEnv, SshEnv],
    workers_factory: Callable[[Bot], Workers],
) -> None:
    kept = release_kept
    async with resumed_after_a_kill(slack, redis_url, tmp_path, kept, workers_factory) as (_, back):
        assert back.step(StepId.DB_ROLLBACK).worker == "worker-B"
        for env in release_kept:
            assert running(env) == "1.4.2"


@pytest.mark.timeout(400)
async def test_a_group_restore_after_both_redeploys_starts_the_database_app_again(
    slack: SlackFake, redis_url: str, tmp_path: Path, release_kept: tuple[SshEnv, SshEnv]
) -> None:
    """api keeps releases: its database step runs after both redeploys; the approver picks a
    restore, which stops api, restores, verifies and starts api again (already on v1.4.2)."""
    storefront, api = release_kept
    assert storefront.db_url
    # A nightly of the shared database at v1.4.2's revision, from before the deploy, where api
    # lists its backups; a row written after it, which only a restore takes away.
    made = old_backup(storefront, V142)
    nightly = backup_dir(api) / made.name
    nightly.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(made, nightly)
    storefront.hosts[0].run("""psql "$(cat .pg_url)" -qc "INSERT INTO users VALUES (4, 'dave')" """)
    async with group_bot(slack, redis_url, tmp_path, group_config(*release_kept)) as bot:
        await roll_back(bot)
        approval = await bot.gate("Approve downgrade", timeout=180)
        # Asked once both apps run v1.4.2: what each host had run by then.
        for env in release_kept:
            assert running(env) == "1.4.2"
        before = [sent(env.hosts[0]) for env in release_kept]
        await bot.click(approval, f"Approve restore from {nightly.name}", "U0ALICE")
        web, back = await wait_members(bot, Status.COMPLETED)
        thread = await bot.said(
            "Restore from backup approved by", "(v1.4.2, already redeployed) is started again"
        )

    # The database is the nightly's: its revision, without the row written after it.
    assert db_revision(storefront.db_url) == V142
    with psycopg.connect(libpq_url(storefront.db_url)) as conn:
        assert conn.execute("SELECT name FROM users WHERE id = 4").fetchone() is None
    for env in release_kept:
        assert running(env) == "1.4.2"
        assert env.hosts[0].health_status() == 200
    # The order, from the hosts' command logs: both redeploys ran before the approval was asked
    # (storefront was not moved after it); api's host then stopped, restored, started again.
    sf_before, api_before = before
    assert any("./run.sh restart" in c for c in sf_before)
    sf_after = sent(storefront.hosts[0])[len(sf_before) :]
    assert [c for c in sf_after if "./run.sh" in c and "status" not in c] == [], sf_after
    assert [c for c in sf_after if "git " in c or "psql" in c] == [], sf_after
    ran = sent(api.hosts[0])
    assert ran[: len(api_before)] == api_before
    assert _index(api_before, "mv -T .current.tmp current") < _index(api_before, "./run.sh restart")
    after = ran[len(api_before) :]
    assert [c for c in api_before if f"< {nightly}" in c] == []
    stop, start = _index(after, "./run.sh stop"), _index(after, "./run.sh start")
    assert stop < _index(after, f"< {nightly}") < start, after
    assert [c for c in after if DOWNGRADE in c] == []
    # The thread and the report say the restore.
    assert back.db_method == "restore"
    assert back.step(StepId.DB_ROLLBACK).summary.startswith(f"Restored {nightly.name}")
    assert f"`api` · App stopped on 1 host(s). Restoring `{nightly.name}`" in thread, thread
    assert (
        f"`api` · Restored; the database is at `{V142}`, the target revision. The app "
        "(v1.4.2, already redeployed) is started again on 1 host(s)." in thread
    ), thread
    assert web.facts.report.path
    report = Path(web.facts.report.path).read_text()
    assert f"Restored {nightly.name}" in report, report
