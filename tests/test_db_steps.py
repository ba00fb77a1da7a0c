"""Step 3, Roll back the database: real PostgreSQL, real alembic over SSH, real pg_dump/psql."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.sample.build import SampleRepo
from bot.steps import assess, code, database
from bot.steps.context import StepContext
from bot.workflow.errors import StepError
from bot.workflow.facts import AssessFacts, MigrationFact
from bot.workflow.model import Criterion, StepId, StepStatus
from runners.ssh import SshRunner
from tests.fakes import RecordingNotifier, apps_file, make_ctx, new_incident, with_step_commands
from tests.fixtures_hosts import MakeSshEnv, SshEnv
from tests.test_plan import sent

ALEMBIC = "alembic -c alembic.ini"
V142, V150 = "b2c3d4e5f6a1", "d4e5f6a1b2c3"
DAY = 86400
PSQL = 'psql -q -v ON_ERROR_STOP=1 "$(cat .pg_url)"'
RESET_AND_RESTORE = (
    f"{PSQL} -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' && {PSQL} < {{backup}}"
)


def backup_dir(env: SshEnv) -> Path:
    return env.hosts[0].real_dir.parent / "backups"


def context(env: SshEnv, tmp_path: Path, config: dict[str, Any] | None = None) -> StepContext:
    apps = apps_file("myapp", config or with_step_commands(env.app_config()))
    incident = new_incident(apps.apps["myapp"])
    runner = SshRunner(apps.apps["myapp"])
    return make_ctx(apps, runner, step=StepId.ASSESS, incident=incident, workspace=tmp_path / "ws")


async def assessed(ctx: StepContext, deployed: str = "v1.5.0") -> AssessFacts:
    facts = await code.assess_code(ctx, deployed)
    ctx.incident.facts.store(facts)
    facts = facts.with_db(await database.assess_db(ctx, facts.target))
    ctx.incident.facts.store(facts)
    return facts


async def step(ctx: StepContext, step_id: StepId, body: Any) -> Any:
    ctx.step = step_id
    out = await body(ctx)
    if out.facts is not None:
        ctx.incident.facts.store(out.facts)
    return out


def sql(env: SshEnv, query: str) -> Any:
    assert env.pg_url is not None
    with psycopg.connect(env.pg_url) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


def old_backup(env: SshEnv, revision: str, name: str = "myapp-nightly.sql") -> Path:
    """A real pg_dump of the database at `revision`, dated a day before the deploy."""
    host = env.hosts[0]
    current = host.run(f"{ALEMBIC} current").split()[0]
    path = backup_dir(env) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    host.run(f"{ALEMBIC} upgrade {revision} && {ALEMBIC} downgrade {revision}")
    host.run(f'pg_dump --clean --if-exists "$(cat .pg_url)" > {path}')
    host.run(f"{ALEMBIC} upgrade {current}")
    past = time.time() - DAY
    os.utime(path, (past, past))
    return path


def read(path: str) -> str:
    return Path(path).read_text()


def notifier(ctx: StepContext) -> RecordingNotifier:
    assert isinstance(ctx.notifier, RecordingNotifier)
    return ctx.notifier


@pytest.mark.hosts(1)
async def test_assess_and_a_backup_that_is_not_there(
    ssh_env_migrated: SshEnv, tmp_path: Path
) -> None:
    env = ssh_env_migrated
    ctx = context(env, tmp_path)
    facts = await assessed(ctx)
    assert facts.db_current_revision == V150
    assert facts.db_target_revision == V142
    assert [m.revision for m in facts.migrations] == [V150, "c3d4e5f6a1b2"]
    assert facts.migrations[1] == MigrationFact(
        revision="c3d4e5f6a1b2",
        down_revision=V142,
        message="add column orders.coupon",
        irreversible=False,
    )
    assert facts.irreversible is False
    assert facts.db_summary == (
        "migrations: 2 to undo (d4e5 → b2c3: create table coupons; add column orders.coupon)"
    )

    config = with_step_commands(env.app_config())
    config["database"]["backup"] = "true"  # succeeds, writes nothing
    bad = context(env, tmp_path, config)
    bad.incident.facts = ctx.incident.facts.model_copy(deep=True)
    with pytest.raises(StepError, match="missing or empty"):
        await step(bad, StepId.DB_PREPARE, database.prepare)
    # A full disk: the dump "succeeds" and leaves an empty file.
    config["database"]["backup"] = ": > {backup}"
    full = context(env, tmp_path, config)
    full.incident.facts = ctx.incident.facts.model_copy(deep=True)
    with pytest.raises(StepError, match="missing or empty"):
        await step(full, StepId.DB_PREPARE, database.prepare)
    await ctx.hosts.close()
    await bad.hosts.close()
    await full.hosts.close()


async def test_assess_reads_the_database_revision_in_the_version_session(
    ssh_env_migrated: SshEnv, tmp_path: Path
) -> None:
    """`alembic current` runs on the database's host in the session that read its version,
    quietly (the version streams to the thread, the revision does not)."""
    env = ssh_env_migrated
    ctx = context(env, tmp_path)
    before = {h.name: h.ssh_sessions() for h in env.hosts}
    try:
        outcome = await assess.run(ctx)
    finally:
        await ctx.hosts.close()
    facts = outcome.facts
    assert isinstance(facts, AssessFacts)
    assert facts.db_current_revision == V150 and facts.deployed_by_host == {
        "web1": "v1.5.0",
        "web2": "v1.5.0",
    }
    assert {h.name: h.ssh_sessions() - before[h.name] for h in env.hosts} == {"web1": 1, "web2": 1}
    notifier = ctx.notifier
    assert isinstance(notifier, RecordingNotifier)
    for host in ("web1", "web2"):
        assert "v1.5.0" in notifier.output_of(host)
        assert not any(V150 in line for line in notifier.output_of(host))


@pytest.mark.hosts(1)
async def test_backup_preview_and_downgrade(ssh_env_migrated: SshEnv, tmp_path: Path) -> None:
    env = ssh_env_migrated
    nightly = old_backup(env, V142)
    later = backup_dir(env) / "myapp-after-deploy.sql"
    later.write_text("-- taken after the deploy\n")
    ctx = context(env, tmp_path)
    db_host = env.hosts[0]
    try:
        await assessed(ctx)
        sessions = db_host.ssh_sessions()
        prep = await step(ctx, StepId.DB_PREPARE, database.prepare)
        # Its seven commands (a deferred one: the listed backups' stat) in one session, the
        # downgrade SQL in a second one beside it.
        assert db_host.ssh_sessions() - sessions == 2
        facts = prep.facts
        own = facts.backup
        assert own.own and own.name.startswith("myapp-INC-42-") and own.size > 1000
        assert Path(own.path).parent == backup_dir(env)
        assert "CREATE TABLE public.coupons" in read(own.path)
        assert [b.path for b in facts.backups] == [own.path, str(later), str(nightly)]
        assert [b.before_deploy for b in facts.backups] == [False, False, True]
        assert facts.restore_default == str(nightly)
        assert facts.recommended == "downgrade" and facts.irreversible is False
        preview = facts.sql_preview
        assert "DROP TABLE coupons" in preview
        assert "ALTER TABLE orders DROP COLUMN coupon" in preview
        assert "INFO" not in preview
        (name, content, title, _) = notifier(ctx).uploads[0]
        assert name == "downgrade-myapp-d4e5-to-b2c3.sql"
        assert f"UPDATE alembic_version SET version_num='{V142}'" in content
        assert title == f"alembic downgrade --sql {V150}:{V142}"
        assert f"Backup `{own.name}` taken on web1" in notifier(ctx).text

        ctx.incident.db_method = "downgrade"
        sessions = db_host.ssh_sessions()
        out = await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert db_host.ssh_sessions() - sessions == 1  # current, downgrade, current
        assert out.criteria == {Criterion.DATABASE: True}
        assert sql(env, "SELECT version_num FROM alembic_version") == V142
        assert sql(env, "SELECT to_regclass('public.coupons')") is None
        assert sql(env, "SELECT COUNT(*) FROM users") == 3
        # The hosts stay on the new code: the redeploy step moves them.
        assert env.hosts[0].run("git describe --tags").strip() == "v1.5.0"
        assert f"`{V150}` → `{V142}`" in notifier(ctx).text

        again = await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert again.summary.startswith("Database already at")
    finally:
        await ctx.hosts.close()


@pytest.mark.hosts(1)
async def test_the_preview_runs_once_unless_the_database_moved_since_assess(
    ssh_env_migrated: SshEnv, tmp_path: Path
) -> None:
    """The downgrade SQL starts beside the backup, for the revision Assess read: it is kept
    when the backup's re-read agrees, and generated again when the database has moved."""
    env = ssh_env_migrated
    ctx = context(env, tmp_path)
    db_host = env.hosts[0]
    C3D4 = "c3d4e5f6a1b2"

    def previews() -> list[str]:
        return [c.split(" && ", 1)[1] for c in sent(db_host) if "downgrade --sql" in c]

    try:
        await assessed(ctx)
        db_host.clear_commands()
        prep = await step(ctx, StepId.DB_PREPARE, database.prepare)
        assert previews() == [f"{ALEMBIC} downgrade --sql {V150}:{V142}"]
        assert "DROP TABLE coupons" in prep.facts.sql_preview

        db_host.run(f"{ALEMBIC} downgrade {C3D4}")  # someone moved it after Assess read V150
        db_host.clear_commands()
        moved = await step(ctx, StepId.DB_PREPARE, database.prepare)
        stale, fresh = (
            f"{ALEMBIC} downgrade --sql {V150}:{V142}",
            f"{ALEMBIC} downgrade --sql {C3D4}:{V142}",
        )
        assert previews()[-1:] == [fresh] and previews().count(stale) <= 1
        assert set(previews()) <= {stale, fresh}
        assert moved.facts.assessed.current_revision == C3D4
        assert "DROP TABLE coupons" not in moved.facts.sql_preview
        assert "ALTER TABLE orders DROP COLUMN coupon" in moved.facts.sql_preview
        (_, _, title, _) = notifier(ctx).uploads[-1]
        assert title == f"alembic downgrade --sql {C3D4}:{V142}"
    finally:
        await ctx.hosts.close()


async def test_restore_from_backup(ssh_env_migrated: SshEnv, tmp_path: Path) -> None:
    env = ssh_env_migrated
    nightly = old_backup(env, V142)
    env.hosts[0].run("""psql "$(cat .pg_url)" -qc "INSERT INTO users VALUES (4, 'dave')" """)
    ctx = context(env, tmp_path)
    try:
        await assessed(ctx)
        await step(ctx, StepId.DB_PREPARE, database.prepare)
        assert ctx.facts.db.restore_default == str(nightly)

        ctx.incident.db_method = "restore"
        ctx.incident.facts.restore_backup = "/etc/passwd"
        with pytest.raises(StepError, match="not one of the backups offered"):
            await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        ctx.incident.facts.restore_backup = ""

        sessions = env.hosts[0].ssh_sessions()
        out = await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        # The backup's check, the stop; then the restore, verify and current in one session.
        assert env.hosts[0].ssh_sessions() - sessions == 3
        assert out.criteria == {Criterion.DATABASE: True}
        assert sql(env, "SELECT version_num FROM alembic_version") == V142
        assert sql(env, "SELECT COUNT(*) FROM users") == 3  # dave came after the nightly
        said = notifier(ctx).text
        assert "Verify after restore on web1:\n```\n3\n```" in said
        assert "App stopped on 2 host(s)" in said
        for host in env.hosts:
            assert any("stopped pid" in line for line in notifier(ctx).output_of(host.name))
            # stopped until the redeploy starts the old version (not 1.5.0 on the old schema)
            assert host.run("./run.sh status", check=False).startswith("stopped")
        assert set(out.hosts) == {"web1", "web2"} and all(h.ok for h in out.hosts.values())
        assert "stays stopped until the redeploy" in notifier(ctx).said[-1]

        # The bot's own backup is always offered, but it holds the new schema: the step fails
        # there, so a person picks another backup before anything else runs.
        assert ctx.facts.db.backup is not None
        ctx.incident.facts.restore_backup = ctx.facts.db.backup.path
        with pytest.raises(StepError, match="not the target") as err:
            await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert "does not match the old code's schema" in str(err.value)
        assert sql(env, "SELECT version_num FROM alembic_version") == V150
        assert sql(env, "SELECT COUNT(*) FROM users") == 4
    finally:
        await ctx.hosts.close()


@pytest.mark.hosts(1)
async def test_irreversible_downgrade_recommends_restore(
    make_ssh_env: MakeSshEnv,
    sample_repo_irreversible: SampleRepo,
    pg_database: str,
    tmp_path: Path,
) -> None:
    env = make_ssh_env(1, ref="v1.6.0", db_url=pg_database, repo=sample_repo_irreversible)
    host = env.hosts[0]
    host.run(f"{ALEMBIC} upgrade {V150}")
    nightly = old_backup(env, V150)
    host.run(f"{ALEMBIC} upgrade head")
    config = with_step_commands(env.app_config())
    # `pg_dump --clean` drops only what the dump holds; tables made after it would survive.
    config["database"]["restore"] = RESET_AND_RESTORE
    ctx = context(env, tmp_path, config)
    try:
        facts = await assessed(ctx, deployed="v1.6.0")
        assert ctx.incident.target == "v1.5.0"
        assert facts.migrations[0].revision == "e5f6a1b2c3d4"
        assert facts.irreversible is True

        prep = await step(ctx, StepId.DB_PREPARE, database.prepare)
        assert prep.facts.irreversible is True
        assert prep.facts.recommended == "restore"
        assert prep.facts.restore_default == str(nightly)
        assert "e5f6a1b2c3d4 cannot be undone" in prep.facts.risk
        assert "myapp-nightly.sql" in prep.facts.risk
        assert "could not be generated" in prep.facts.sql_preview
        assert ":warning:" in notifier(ctx).text

        ctx.incident.db_method = "downgrade"
        with pytest.raises(StepError) as err:
            await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert "alembic downgrade d4e5f6a1b2c3` failed" in err.value.what
        assert "Restore from the backup" in err.value.hint
        assert sql(env, "SELECT version_num FROM alembic_version") == "e5f6a1b2c3d4"

        ctx.incident.db_method = "restore"
        out = await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert out.criteria == {Criterion.DATABASE: True}
        assert sql(env, "SELECT version_num FROM alembic_version") == V150
        assert sql(env, "SELECT to_regclass('public.audit_log')") is None
        assert (
            sql(
                env,
                "SELECT COUNT(*) FROM information_schema.columns "
                "WHERE table_name = 'orders' AND column_name = 'total_cents'",
            )
            == 1
        )
        assert sql(env, "SELECT COUNT(*) FROM users") == 3
    finally:
        await ctx.hosts.close()


@pytest.mark.hosts(1)
async def test_after_the_redeploy_the_downgrade_runs_in_the_kept_release_or_refuses(
    make_ssh_env: MakeSshEnv, sample_repo: SampleRepo, pg_database: str, tmp_path: Path
) -> None:
    """A release group's shared database whose app keeps releases is downgraded after that
    app's redeploy: in `releases/<deployed>`, checked complete first, never elsewhere."""
    env = make_ssh_env(1, repo=sample_repo, db_url=pg_database, migrate=True, releases=3)
    host = env.hosts[0]
    kept = f"{env.workdir}/releases/v1.5.0"
    ctx = context(env, tmp_path)
    try:
        await assessed(ctx)
        host.clear_commands()
        ctx.incident.db_method = "downgrade"
        # As after the redeploy: `current` no longer holds v1.5.0's revision files.
        ctx.incident.step(StepId.REDEPLOY).status = StepStatus.SUCCEEDED
        host.run("ln -sfn releases/gone current")
        host.run("mv releases/v1.5.0/.rewind-release releases/v1.5.0/marker.bak")
        with pytest.raises(StepError) as refused:
            await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        what = refused.value.what
        assert f"the kept release of v1.5.0 on web1 (`{kept}`) is missing or incomplete" in what
        assert "Nothing was run" in what and "Restore from the backup" in refused.value.hint
        assert sql(env, "SELECT version_num FROM alembic_version") == V150

        host.run("echo 0000000 > releases/v1.5.0/.rewind-release")  # another commit's
        with pytest.raises(StepError) as other:
            await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert "is at another commit (`0000000`)" in other.value.what

        assert sql(env, "SELECT version_num FROM alembic_version") == V150
        host.run("mv releases/v1.5.0/marker.bak releases/v1.5.0/.rewind-release")
        host.clear_commands()
        out = await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert out.criteria == {Criterion.DATABASE: True}
        assert sql(env, "SELECT version_num FROM alembic_version") == V142
        ran = [c for c in sent(host) if f"{ALEMBIC} downgrade {V142}" in c]
        assert ran == [f"cd {kept} && {ALEMBIC} downgrade {V142}"]
        assert f"in the kept release `{kept}`" in notifier(ctx).text
    finally:
        await ctx.hosts.close()


@pytest.mark.hosts(1)
async def test_a_group_owner_without_releases_downgrades_in_a_scratch_copy_after_its_redeploy(
    make_ssh_env: MakeSshEnv, sample_repo: SampleRepo, pg_database: str, tmp_path: Path
) -> None:
    """A release group's shared database whose app keeps no releases (a git checkout): Prepare
    copies the deployed commit aside before the redeploy; the downgrade runs in that copy after
    it (marker checked first, never elsewhere) and removes it; run again once the copy is gone
    (a worker killed between the removal and the step's record), it finds the work done."""
    from bot.workflow.group import Downgrade, step_order
    from bot.workflow.model import StepRecord
    from bot.workflow.steps import ORDER

    env = make_ssh_env(1, repo=sample_repo, db_url=pg_database, migrate=True)
    host = env.hosts[0]
    ctx = context(env, tmp_path)
    down = Downgrade("shopdb", "myapp", ("web", "myapp"), ("web", "myapp"), scratch=True)
    ctx.incident.steps = [StepRecord(id=s) for s in step_order(ORDER, down)]
    copy = f"{env.workdir}/.git/rewind-downgrade-{ctx.incident.id}"
    try:
        facts = await assessed(ctx)
        host.clear_commands()
        await step(ctx, StepId.DB_PREPARE, database.prepare)
        marker = host.run(f"cat {copy}/.rewind-release").strip()
        assert marker == facts.deployed_sha and facts.deployed_sha
        assert host.run(f"test -f {copy}/alembic.ini && echo ok").strip() == "ok"
        assert f"A scratch copy of v1.5.0 is in `{copy}`" in notifier(ctx).text
        # As after the redeploy: the checkout at v1.4.2, without v1.5.0's revision files.
        host.run("git checkout -q --force v1.4.2")
        ctx.incident.step(StepId.REDEPLOY).status = StepStatus.SUCCEEDED
        ctx.incident.db_method = "downgrade"
        host.run(f"echo 0000000 > {copy}/.rewind-release")  # another commit's
        with pytest.raises(StepError) as other:
            await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert "the scratch copy of v1.5.0 on web1" in other.value.what
        assert "is at another commit (`0000000`)" in other.value.what
        assert sql(env, "SELECT version_num FROM alembic_version") == V150
        host.run(f"echo {marker} > {copy}/.rewind-release")
        host.clear_commands()
        out = await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert out.criteria == {Criterion.DATABASE: True}
        assert sql(env, "SELECT version_num FROM alembic_version") == V142
        ran = sent(host)
        assert [c for c in ran if f"{ALEMBIC} downgrade {V142}" in c] == [
            f"cd {copy} && {ALEMBIC} downgrade {V142}"
        ]
        assert ran[-1] == f"rm -rf -- {copy} {copy}.new {copy}.tar"
        assert host.run(f"test -e {copy} || echo gone").strip() == "gone"
        assert f"in the scratch copy `{copy}`" in notifier(ctx).text
        # Again, the copy gone: the database is read from the workdir, at the target: done.
        host.clear_commands()
        again = await step(ctx, StepId.DB_ROLLBACK, database.rollback)
        assert "already at" in again.summary
        assert sql(env, "SELECT version_num FROM alembic_version") == V142
    finally:
        await ctx.hosts.close()


@pytest.mark.hosts(1)
async def test_a_scratch_copy_whose_alembic_reads_another_database_is_refused_before_the_redeploy(
    make_ssh_env: MakeSshEnv, sample_repo: SampleRepo, pg_database: str, tmp_path: Path
) -> None:
    """Prepare reads `alembic current` in the scratch copy it made: when it is not what the
    checkout reads (here alembic, outside a checkout, is pointed at a SQLite file), it stops
    there, before the redeploy, saying where and what to do."""
    from bot.workflow.group import Downgrade, step_order
    from bot.workflow.model import StepRecord
    from bot.workflow.steps import ORDER

    env = make_ssh_env(1, repo=sample_repo, db_url=pg_database, migrate=True)
    config = with_step_commands(env.app_config())
    elsewhere = "env $(test -d .git || echo DATABASE_URL=sqlite:///elsewhere.db)"
    config["database"] = {**config["database"], "alembic": f"{elsewhere} {ALEMBIC}"}
    ctx = context(env, tmp_path, config)
    down = Downgrade("shopdb", "myapp", ("myapp",), ("myapp",), scratch=True)
    ctx.incident.steps = [StepRecord(id=s) for s in step_order(ORDER, down)]
    copy = f"{env.workdir}/.git/rewind-downgrade-{ctx.incident.id}"
    try:
        await assessed(ctx)
        with pytest.raises(StepError) as refused:
            await step(ctx, StepId.DB_PREPARE, database.prepare)
        assert (
            f"`alembic current` in the scratch copy of v1.5.0 (`{copy}`) reads nothing, not "
            f"`{V150}` as in the checkout" in refused.value.what
        )
        assert "make the alembic configuration find the database" in refused.value.hint
        assert sql(env, "SELECT version_num FROM alembic_version") == V150
    finally:
        await ctx.hosts.close()
