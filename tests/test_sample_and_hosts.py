"""The sample app, its origin and the SSH test hosts behave as every other test expects."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import asyncssh
import pytest

from bot.sample.build import SampleRepo, git
from tests.fixtures_hosts import *  # noqa: F403
from tests.fixtures_hosts import SshEnv, TestHost


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def ssh_run(env: SshEnv, host: TestHost, cmd: str, *, check: bool = True) -> str:
    async with asyncssh.connect(**env.connect_kwargs(host)) as conn:
        result = await conn.run(f"cd {env.workdir} && {cmd}", check=check, timeout=60)
        return str(result.stdout) + str(result.stderr)


def test_origin_history(sample_repo: SampleRepo) -> None:
    assert set(sample_repo.tags) == {"v1.4.0", "v1.4.2", "v1.5.0"}
    assert (sample_repo.good, sample_repo.bad) == ("v1.4.2", "v1.5.0")
    assert len(sample_repo.merges) == 2
    origin = sample_repo.origin
    for sha in sample_repo.merges:
        parents = git(["rev-list", "--parents", "-n", "1", sha], origin).split()
        assert len(parents) == 3  # a real merge commit
        git(["merge-base", "--is-ancestor", sample_repo.tags["v1.4.2"], sha], origin)
        git(["merge-base", "--is-ancestor", sha, sample_repo.tags["v1.5.0"]], origin)
    good_app = git(["show", "v1.4.2:app.py"], origin)
    bad_app = git(["show", "v1.5.0:app.py"], origin)
    assert "BROKEN = False" in good_app
    assert "BROKEN = True" in bad_app
    versions = git(["ls-tree", "--name-only", "v1.5.0", "alembic/versions/"], origin).split()
    assert [Path(v).name[:12] for v in versions] == sample_repo.migrations["v1.5.0"]
    mode = git(["ls-tree", "v1.5.0", "run.sh"], origin).split()[0]
    assert mode == "100755"


def test_irreversible_release(sample_repo_irreversible: SampleRepo) -> None:
    repo = sample_repo_irreversible
    assert "v1.6.0" in repo.tags
    text = git(["show", "v1.6.0:alembic/versions/e5f6a1b2c3d4_create_audit_log.py"], repo.origin)
    assert "raise NotImplementedError" in text


async def test_hosts_same_workdir_different_content(ssh_env: SshEnv) -> None:
    web1, web2 = ssh_env.hosts
    assert web1.workdir == web2.workdir == ssh_env.workdir
    assert web1.real_dir != web2.real_dir
    (web1.real_dir / "marker.txt").write_text("web1 only\n")
    outs = await asyncio.gather(
        *(
            ssh_run(ssh_env, h, "pwd; git describe --tags; cat marker.txt || echo no-marker")
            for h in ssh_env.hosts
        )
    )
    for out in outs:
        assert out.splitlines()[:2] == [ssh_env.workdir, "v1.5.0"]
    assert "web1 only" in outs[0]
    assert "no-marker" in outs[1]
    assert web2.run("cat marker.txt 2>/dev/null || echo no-marker").strip() == "no-marker"
    for h in ssh_env.hosts:
        assert http_get(h.health_url)[0] == 500
        status, body = http_get(h.api_health_url)
        assert status == 500
        assert json.loads(body)["status"] == "error"
        assert "running 1.5.0 pid" in await ssh_run(ssh_env, h, "./run.sh status")


async def test_rollback_over_ssh_makes_health_green(ssh_env: SshEnv) -> None:
    web1, web2 = ssh_env.hosts
    out = await ssh_run(ssh_env, web1, "./smoke.sh login", check=False)
    assert "FAIL" in out
    await ssh_run(ssh_env, web1, "git checkout --quiet --force v1.4.2 && ./run.sh restart")
    assert http_get(web1.health_url) == (200, "ok\n")
    assert json.loads(http_get(web1.api_health_url)[1]) == {"status": "ok", "version": "1.4.2"}
    assert http_get(web2.health_url)[0] == 500  # the other host is untouched
    assert "PASS" in await ssh_run(ssh_env, web1, "./smoke.sh login && ./smoke.sh checkout")
    status = await ssh_run(ssh_env, web1, "git status --porcelain; ./run.sh status")
    assert status.strip().startswith("running 1.4.2 pid")
    log = (web2.real_dir / "app.log").read_text()
    assert "ERROR" in log and "Traceback" in log
    await ssh_run(ssh_env, web1, "./run.sh stop")
    assert (await ssh_run(ssh_env, web1, "./run.sh status; echo rc=$?", check=False)).split() == [
        "stopped",
        "rc=3",
    ]


async def test_alembic_on_postgres_over_ssh(ssh_env_db: SshEnv) -> None:
    web1 = ssh_env_db.hosts[0]
    alembic = "alembic -c alembic.ini"
    await ssh_run(ssh_env_db, web1, f"{alembic} upgrade head")
    assert "d4e5f6a1b2c3 (head)" in await ssh_run(ssh_env_db, web1, f"{alembic} current")
    backup = web1.real_dir.parent / "backup.sql"
    await ssh_run(ssh_env_db, web1, f'pg_dump --clean --if-exists "$(cat .pg_url)" > {backup}')
    assert "CREATE TABLE public.coupons" in backup.read_text()
    await ssh_run(ssh_env_db, web1, f"{alembic} downgrade b2c3d4e5f6a1")
    assert "b2c3d4e5f6a1" in await ssh_run(ssh_env_db, web1, f"{alembic} current")
    count = await ssh_run(
        ssh_env_db, web1, "psql \"$(cat .pg_url)\" -tAc 'SELECT COUNT(*) FROM users'"
    )
    assert count.strip() == "3"
    sql = await ssh_run(ssh_env_db, web1, f"{alembic} upgrade b2c3d4e5f6a1:head --sql")
    assert "ALTER TABLE orders ADD COLUMN coupon" in sql
    assert (await ssh_run(ssh_env_db, web1, "git status --porcelain")).strip() == ""


async def test_migrated_env_is_at_head(ssh_env_migrated: SshEnv) -> None:
    out = await ssh_run(
        ssh_env_migrated, ssh_env_migrated.hosts[1], "alembic -c alembic.ini current"
    )
    assert "d4e5f6a1b2c3 (head)" in out  # same database, seen from the other host


@pytest.mark.parametrize("ssh_hosts", [1], indirect=True)
async def test_wrong_known_hosts_is_refused(
    ssh_hosts: list[TestHost], ssh_env: SshEnv, tmp_path: Path
) -> None:
    assert len(ssh_hosts) == 1
    host = ssh_hosts[0]
    other = asyncssh.generate_private_key("ssh-ed25519")
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_bytes(f"[127.0.0.1]:{host.port} ".encode() + other.export_public_key("openssh"))
    kwargs = ssh_env.connect_kwargs(host) | {"known_hosts": str(wrong)}
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with asyncssh.connect(**kwargs):
            pass
    async with asyncssh.connect(**ssh_env.connect_kwargs(host)) as conn:
        assert (await conn.run("echo ok", check=True)).stdout == "ok\n"
