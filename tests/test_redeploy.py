"""Step 4 on real SSH hosts: every host moves to the target, batch by batch; a failing host stops
the rollout and Retry redoes only the hosts not on the target yet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config.apps_file import AppsFile
from bot.sample.build import git
from bot.steps import redeploy, signal_reads, verify
from bot.workflow.errors import HostError
from bot.workflow.facts import RedeployFacts
from bot.workflow.model import Criterion, StepId
from runners.recording import RecordingRunner
from runners.ssh import SshRunner
from tests.fakes import RecordingNotifier, make_apps, make_ctx, make_incident, step_app
from tests.fixtures_hosts import MakeSshEnv, SshEnv, TestHost


def describe(host: TestHost) -> str:
    return host.run("git describe --tags --always").strip()


@pytest.fixture
async def runners() -> AsyncIterator[list[SshRunner]]:
    made: list[SshRunner] = []
    yield made
    for r in made:
        await r.close()


def runner_for(apps: AppsFile, made: list[SshRunner]) -> SshRunner:
    r = SshRunner(apps.apps["myapp"])
    made.append(r)
    return r


async def test_all_hosts_redeployed_at_once(ssh_env: SshEnv, runners: list[SshRunner]) -> None:
    assert ssh_env.repo is not None
    apps = make_apps(step_app(ssh_env))
    notifier = RecordingNotifier()
    # 'tag' method: the hotfix commit is the tag's commit, which every host must be on
    incident = make_incident()
    incident.facts.assess.target_sha = ssh_env.repo.tags["v1.4.2"]
    ctx = make_ctx(
        apps, runner_for(apps, runners), step=StepId.REDEPLOY, incident=incident, notifier=notifier
    )
    before = datetime.now(UTC) - timedelta(seconds=5)

    outcome = await redeploy.run(ctx)

    assert outcome.criteria == {Criterion.DEPLOYED: True}
    assert sorted(outcome.hosts) == ["web1", "web2"]
    assert all(r.ok for r in outcome.hosts.values())
    for host in ssh_env.hosts:
        assert describe(host) == "v1.4.2"
        assert host.run("cat VERSION").strip() == "1.4.2"
        assert host.health_status() == 200
        at = datetime.fromisoformat(outcome.facts.restart_at[host.name])
        assert before < at < datetime.now(UTC) + timedelta(seconds=5)
        out = "\n".join(notifier.output_of(host.name))
        assert "started 1.4.2" in out and "running 1.4.2" in out  # restart and status streamed
        assert "requirements.txt unchanged: install skipped" in out
    assert outcome.facts.redeployed_hosts == ["web1", "web2"]
    assert outcome.facts.versions_by_host == {"web1": "v1.4.2", "web2": "v1.4.2"}
    # the hotfix ref was missing, so the target itself was fetched
    assert outcome.facts.ref == "v1.4.2"
    assert "v1.4.2" in outcome.summary


@pytest.mark.hosts(3)
async def test_rolling_stops_at_failing_batch_and_retry_redoes_the_rest(
    ssh_env: SshEnv, runners: list[SshRunner]
) -> None:
    web1, web2, web3 = ssh_env.hosts
    app = step_app(ssh_env)
    app["deploy"]["rolling"] = 1
    apps = make_apps(app)
    notifier = RecordingNotifier()
    incident = make_incident()
    web2.run("echo not-a-port > .port")  # web2's app cannot start
    ctx = make_ctx(
        apps, runner_for(apps, runners), step=StepId.REDEPLOY, incident=incident, notifier=notifier
    )
    with pytest.raises(HostError) as failure:
        await redeploy.run(ctx)
    err = failure.value
    assert err.host == "web2"
    assert "`restart`" in err.what
    assert "Already on the target: web1." in err.hint
    assert "Not started: web3." in err.hint
    assert err.hosts["web1"].ok and not err.hosts["web2"].ok
    assert "web3" not in err.hosts
    assert any("Batch 2/3: web2" in s for s in notifier.said)
    assert not any("Batch 3/3" in s for s in notifier.said)
    assert describe(web1) == "v1.4.2" and web1.health_status() == 200
    assert describe(web3) == "v1.5.0" and web3.health_status() == 500  # not touched
    assert incident.facts.redeploy.redeployed_hosts == ["web1"]  # kept for the Retry

    # Retry after the cause is fixed: only web2 and web3 are redeployed.
    web2.run(f"echo {web2.app_port} > .port")
    notifier.lines.clear()
    ctx = make_ctx(
        apps, runner_for(apps, runners), step=StepId.REDEPLOY, incident=incident, notifier=notifier
    )
    outcome = await redeploy.run(ctx)
    assert outcome.facts.redeployed_hosts == ["web1", "web2", "web3"]
    assert notifier.output_of("web1") == []
    assert notifier.output_of("web2") and notifier.output_of("web3")
    assert any("Already on v1.4.2: web1" in s for s in notifier.said)
    for host in ssh_env.hosts:
        assert describe(host) == "v1.4.2"
        assert host.health_status() == 200


def _hotfix_branch(env: SshEnv, tmp: Any) -> str:
    """A 'revert'-style hotfix: a new commit on top of v1.4.2, pushed as a branch."""
    assert env.repo is not None
    work = tmp / "hotfix"
    git(["clone", "--quiet", str(env.repo.origin), str(work)], tmp)
    git(["checkout", "--quiet", "-b", "hotfix/rollback-myapp-v1.4.2-ab12", "v1.4.2"], work)
    with (work / "requirements.txt").open("a") as fh:
        fh.write("# pinned again by the revert\n")
    git(["commit", "--quiet", "-am", "Revert release 1.5.0"], work)
    git(["push", "--quiet", "origin", "hotfix/rollback-myapp-v1.4.2-ab12"], work)
    return git(["rev-parse", "HEAD"], work)


@pytest.mark.hosts(1)
async def test_revert_hotfix_checked_by_sha(
    make_ssh_env: MakeSshEnv, sample_repo: Any, runners: list[SshRunner], tmp_path: Any
) -> None:
    env = make_ssh_env(1, repo=sample_repo)
    sha = _hotfix_branch(env, tmp_path)
    app = step_app(env)
    app["deploy"]["commands"]["install"] = "echo installing dependencies"
    apps = make_apps(app)
    notifier = RecordingNotifier()
    branch = "hotfix/rollback-myapp-v1.4.2-ab12"
    incident = make_incident(
        facts={
            "assess": {"target": "v1.4.2"},
            "code": {"hotfix_ref": branch, "hotfix_sha": "0" * 40},
        }
    )
    ctx = make_ctx(
        apps, runner_for(apps, runners), step=StepId.REDEPLOY, incident=incident, notifier=notifier
    )
    off = (
        r"`version` reports v1\.4\.2-1-g[0-9a-f]+: "
        r"the checkout is at [0-9a-f]{12}, not 000000000000"
    )
    with pytest.raises(HostError, match=off):
        await redeploy.run(ctx)
    assert "installing dependencies" in notifier.output_of("web1")  # requirements.txt changed
    assert incident.facts.redeploy.redeployed_hosts == []

    # Retry with the right commit: the checkout is already new, yet install runs again, since
    # the first attempt's install may be what failed.
    notifier.lines.clear()
    incident.facts.code.hotfix_sha = sha
    ctx = make_ctx(
        apps, runner_for(apps, runners), step=StepId.REDEPLOY, incident=incident, notifier=notifier
    )
    outcome = await redeploy.run(ctx)
    assert "installing dependencies" in notifier.output_of("web1")
    assert outcome.facts.versions_by_host["web1"].startswith("v1.4.2-1-g")
    assert env.hosts[0].run("git rev-parse HEAD").strip() == sha
    assert env.hosts[0].health_status() == 200


def test_parse_clock_and_batches() -> None:
    at = redeploy.parse_clock("2024-05-02T12:00:01.123456789+0200\n")
    assert at == (datetime(2024, 5, 2, 10, 0, 1, 123456, tzinfo=UTC), 7200)
    busybox = redeploy.parse_clock("2024-05-02T12:00:01.%N-0130")
    assert busybox == (datetime(2024, 5, 2, 13, 30, 1, tzinfo=UTC), -5400)
    assert redeploy.parse_clock("date: invalid option") is None
    apps = make_apps(
        {
            "repo": "/r",
            "incident_channel": "C0",
            "ssh": {"transport": "local"},
            "approvers": ["U0ALICE", "U0BOB"],
            "hosts": [{"name": f"web{i}", "address": "127.0.0.1"} for i in range(1, 6)],
            "deploy": {"strategy": "systemd", "workdir": "/srv/app", "service": "myapp"},
        }
    )
    hosts = apps.apps["myapp"].hosts
    assert [[h.name for h in b] for b in redeploy.batches(hosts, 2)] == [
        ["web1", "web2"], ["web3", "web4"], ["web5"],
    ]  # fmt: skip
    assert [len(b) for b in redeploy.batches(hosts, None)] == [5]


@pytest.mark.hosts(1)
async def test_the_plan_shows_the_commands_the_run_sends(
    make_ssh_env: MakeSshEnv, sample_repo: Any, runners: list[SshRunner], tmp_path: Any
) -> None:
    """The plan (`/rollback plan`) and the run read one declaration, `redeploy.host_script`:
    what the plan lists for a host is, in order, what the host was sent."""
    env = make_ssh_env(1, repo=sample_repo)
    sha = _hotfix_branch(env, tmp_path)  # requirements.txt changes: install runs too
    branch = "hotfix/rollback-myapp-v1.4.2-ab12"
    apps = make_apps(step_app(env))
    incident = make_incident(
        facts={"assess": {"target": "v1.4.2"}, "code": {"hotfix_ref": branch, "hotfix_sha": sha}}
    )
    sent = RecordingRunner(runner_for(apps, runners))
    ctx = make_ctx(apps, sent, step=StepId.REDEPLOY, incident=incident)

    await redeploy.run(ctx)

    app, host = apps.apps["myapp"], apps.apps["myapp"].hosts[0]
    planned = redeploy.host_script(app, host, branch, "v1.4.2").planned()
    names = [p.name for p in planned]
    assert names == [
        "dependencies",
        "fetch",
        "dependencies",
        "install",
        "clock",
        "restart",
        "status",
        "version",
        "head",
    ]
    # Then the host's own checks as it came back: its logs (health is read over HTTP).
    logs_read = verify.logs_command(app, host, signal_reads.EPOCH, 0)
    assert sent.commands("web1") == [p.command for p in planned] + [logs_read]
    install = next(p for p in planned if p.name == "install")
    assert install.note == "only if requirements.txt changed"  # the strategy's dependency file

    # Again, from a fresh start on the new checkout: the dependency file is unchanged, and the
    # same commands are sent but `install`.
    sent.ran.clear()
    incident.facts.redeploy = RedeployFacts()
    await redeploy.run(make_ctx(apps, sent, step=StepId.REDEPLOY, incident=incident))
    again = [p.command for p in planned if p.name != "install"]
    assert sent.commands("web1") == [*again, logs_read]
