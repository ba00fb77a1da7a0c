"""Releases kept warm (`deploy.releases`) on real SSH hosts: a host that keeps the target only
switches `current` and restarts; a host without it, or whose kept release was deleted by hand
after Assess read it, takes the full path; pruning keeps N; Assess names the warm hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config.apps_file import AppsFile, ConfigError, parse_apps
from bot.plan.render import markdown
from bot.steps import assess, redeploy
from bot.store.redis_store import RedisStore, connect
from bot.workflow.errors import UserFacingError
from bot.workflow.facts import RedeployFacts
from bot.workflow.model import StepId
from bot.workflow.version import Version
from runners import releases
from runners.recording import RecordingRunner
from runners.ssh import SshRunner
from tests.fakes import RecordingNotifier, make_apps, make_ctx, make_incident, step_app
from tests.fixtures_hosts import MakeSshEnv, SshEnv, TestHost
from tests.test_plan import CAROL, planner_for

# What the full path's commands leave on the host, in its shared/ directory.
FETCH = "git fetch --tags --force origin {ref} && git checkout --force FETCH_HEAD"
TRACE = " && echo {what} {version} >> ../../shared/ran"


def releases_app(env: SshEnv, keep: int) -> dict[str, Any]:
    app = step_app(env)
    app["deploy"]["releases"] = keep
    commands = app["deploy"]["commands"]
    commands["fetch"] = FETCH + TRACE.format(what="fetch", version="{version}")
    commands["install"] = "true" + TRACE.format(what="install", version="{version}")
    return app


def ran(host: TestHost) -> list[str]:
    """What the full path's commands did on the host, in order."""
    return host.run("cat shared/ran 2>/dev/null || true").split()


def kept(host: TestHost) -> list[str]:
    return sorted(host.run("ls releases").split())


def current(host: TestHost) -> str:
    return host.run("readlink current").strip()


@pytest.fixture
async def runners() -> AsyncIterator[list[SshRunner]]:
    made: list[SshRunner] = []
    yield made
    for r in made:
        await r.close()


async def rollout(
    apps: AppsFile, made: list[SshRunner], target: str, sha: str, hotfix_sha: str = ""
) -> tuple[RecordingRunner, RecordingNotifier]:
    runner = SshRunner(apps.apps["myapp"])
    made.append(runner)
    sent, notifier = RecordingRunner(runner), RecordingNotifier()
    facts = {"assess": {"target": target, "target_sha": sha}, "code": {"hotfix_sha": hotfix_sha}}
    incident = make_incident(facts=facts)
    incident.facts.redeploy = RedeployFacts()
    ctx = make_ctx(apps, sent, step=StepId.REDEPLOY, incident=incident, notifier=notifier)
    await redeploy.run(ctx)
    return sent, notifier


@pytest.mark.hosts(3)
async def test_a_kept_release_is_switched_to_and_the_others_take_the_full_path(
    make_ssh_env: MakeSshEnv, sample_repo: Any, runners: list[SshRunner]
) -> None:
    env = make_ssh_env(3, ref="v1.4.2", repo=sample_repo, releases=3)
    web1, web2, web3 = env.hosts
    tags = sample_repo.tags
    apps = make_apps(releases_app(env, 3))
    # The bad deploy, through the full path everywhere: v1.4.2 stays kept.
    await rollout(apps, runners, "v1.5.0", tags["v1.5.0"])
    for host in env.hosts:
        assert current(host) == "releases/v1.5.0" and host.health_status() == 500
        assert ran(host) == ["fetch", "v1.5.0", "install", "v1.5.0"]
        assert kept(host) == ["v1.4.2", "v1.5.0"]
    web3.run("rm -rf releases/v1.4.2")  # web3 has not got the target

    # Assess reads the kept releases in its own session and names the warm hosts.
    runner = SshRunner(apps.apps["myapp"])
    runners.append(runner)
    reads = RecordingRunner(runner)
    incident = make_incident(requested_version="v1.4.2")
    before = [h.ssh_sessions() for h in env.hosts]
    told = RecordingNotifier()
    outcome = await assess.run(
        make_ctx(apps, reads, step=StepId.ASSESS, incident=incident, notifier=told)
    )
    said = "\n".join(told.said)
    assert "Kept warm on: web1, web2 (switch and restart); full deploy on: web3" in said
    facts = outcome.facts
    assert facts is not None and facts.target == "v1.4.2"  # type: ignore[attr-defined]
    assert facts.warm_hosts == ["web1", "web2"]  # type: ignore[attr-defined]
    assert [h.ssh_sessions() - n for h, n in zip(env.hosts, before, strict=True)] == [1, 1, 1]

    web2.run("rm -rf releases/v1.4.2")  # deleted by hand after Assess read it
    for host in env.hosts:
        host.run("rm -f shared/ran")
        host.clear_commands()
    sent, notifier = await rollout(apps, runners, "v1.4.2", tags["v1.4.2"])

    # Each host was sent one script, which reads the kept release on the host itself; the
    # commands it then ran are those the runner recorded (the bot says go or skip to each).
    # Then the host's own checks as it came back: its logs since the restart.
    marker = f"cat {env.workdir}/releases/v1.4.2/.rewind-release"
    for host in env.hosts:
        script, *checks = host.commands()
        assert marker in script
        assert len(checks) == 1 and "tail -n 200 app.log" in checks[0]

    for host in env.hosts:
        assert current(host) == "releases/v1.4.2"
        assert host.health_status() == 200
        assert host.run("current/run.sh status").startswith("running 1.4.2")
    assert ran(web1) == []  # warm: no fetch, no install ran on the host
    names = [c for c in sent.commands("web1")]
    assert not any("git fetch" in c for c in names)
    assert "is kept here: switching" in "\n".join(notifier.output_of("web1"))
    for cold in (web2, web3):  # the full path, checked on the host at run time
        assert ran(cold) == ["fetch", "v1.4.2", "install", "v1.4.2"]
        assert any("git fetch" in c for c in sent.commands(cold.name))
        assert "not kept here: full deploy" in "\n".join(notifier.output_of(cold.name))
        assert cold.run("cat releases/v1.4.2/.rewind-release").strip() == tags["v1.4.2"]


@pytest.mark.hosts(1)
async def test_pruning_keeps_the_last_n_and_never_current(
    make_ssh_env: MakeSshEnv, sample_repo: Any, runners: list[SshRunner]
) -> None:
    env = make_ssh_env(1, ref="v1.4.2", repo=sample_repo, releases=2)
    (host,) = env.hosts
    apps = make_apps(releases_app(env, 2))
    tags = sample_repo.tags
    versions = [t for t in ("v1.3.0", "v1.4.0", "v1.5.0") if t in tags]
    assert len(versions) >= 2, sorted(tags)
    for version in versions:
        await rollout(apps, runners, version, tags[version])
        assert current(host) == f"releases/{version}"
        assert len(kept(host)) <= 2
    assert kept(host) == sorted(versions[-2:])
    # Back to the one before: kept, so switched to; nothing pruned that is still wanted.
    host.run("rm -f shared/ran")
    await rollout(apps, runners, versions[-2], tags[versions[-2]])
    assert ran(host) == [] and kept(host) == sorted(versions[-2:])
    assert current(host) == f"releases/{versions[-2]}"
    # A revert hotfix is a new commit holding exactly the target's files: the kept release of
    # the target serves for it, and the host is checked against the kept commit.
    await rollout(apps, runners, versions[-1], tags[versions[-1]])
    revert = "0123456789abcdef0123456789abcdef01234567"
    await rollout(apps, runners, versions[-2], tags[versions[-2]], hotfix_sha=revert)
    assert ran(host) == [] and current(host) == f"releases/{versions[-2]}"


@pytest.mark.hosts(1)
async def test_without_releases_the_commands_are_as_before(
    ssh_env: SshEnv, runners: list[SshRunner]
) -> None:
    apps = make_apps(step_app(ssh_env))
    app, host = apps.apps["myapp"], apps.apps["myapp"].hosts[0]
    names = [p.name for p in redeploy.host_script(app, host, "v1.4.2", "v1.4.2").planned()]
    assert "prepare" not in names and "switch" not in names and "prune" not in names
    assert app.run_dir(host) == app.workdir(host)


def test_release_names_are_checked_and_quoted() -> None:
    assert releases.release_name("release/1.2") == "release+1.2"
    for bad in ("..", ".hidden", "v1; rm -rf /", "-v1", "/abs", "a b"):
        with pytest.raises(UserFacingError):
            releases.release_name(bad)
    assert "cat '/srv/my app/releases/v1.4.2/.rewind-release'" in releases.kept(
        "/srv/my app", "v1.4.2"
    )
    switch = releases.switch("/srv/app", "v1.4.2")
    assert "ln -sfn releases/v1.4.2 .current.tmp && mv -T .current.tmp current" in switch


@pytest.mark.hosts(2)
async def test_the_plan_names_the_warm_hosts(
    make_ssh_env: MakeSshEnv,
    sample_repo: Any,
    runners: list[SshRunner],
    redis_url: str,
    tmp_path: Path,
) -> None:
    env = make_ssh_env(2, ref="v1.4.2", repo=sample_repo, releases=3)
    web1, web2 = env.hosts
    await rollout(make_apps(releases_app(env, 3)), runners, "v1.5.0", sample_repo.tags["v1.5.0"])
    web2.run("rm -rf releases/v1.4.2")
    for host in env.hosts:
        host.clear_commands()
    store = RedisStore(connect(redis_url))
    try:
        plan = await planner_for(env, store, tmp_path).plan("myapp", Version("v1.4.2"), CAROL)
    finally:
        await store.r.aclose()

    assert plan.warm_hosts == ["web1"]
    text = markdown(plan)
    assert "Kept warm (switch `current` and restart, no fetch, no install): `web1`" in text
    assert "full deploy into a new release: `web2`" in text
    notes = {(c.host, c.name): c.note for c in plan.commands}
    assert notes[("web1", "fetch")] == "skipped: the target is kept here"
    assert notes[("web2", "fetch")] == "the target is not kept here"
    # Planning changed nothing: every host still runs v1.5.0 from its own release.
    for host in env.hosts:
        assert current(host) == "releases/v1.5.0" and host.health_status() == 500
    assert kept(web1) == ["v1.4.2", "v1.5.0"] and kept(web2) == ["v1.5.0"]


def test_releases_are_refused_where_hosts_keep_no_checkout() -> None:
    app = {
        "environment": "staging",
        "repo": "https://example.com/acme/myapp.git",
        "incident_channel": "C0INCIDENT",
        "hosts": [{"name": "kube", "address": "127.0.0.1"}],
        "deploy": {
            "strategy": "kubernetes",
            "workdir": "/srv/myapp",
            "service": "myapp",
            "image": "registry.example.com/acme/myapp",
            "releases": 3,
        },
    }
    with pytest.raises(ConfigError) as info:
        parse_apps({"apps": {"myapp": app}}, "apps.yaml")
    assert "strategy 'kubernetes' keeps no releases on hosts" in str(info.value)
    app["deploy"] = {"strategy": "commands", "workdir": "/srv/myapp", "releases": 0}
    with pytest.raises(ConfigError):
        parse_apps({"apps": {"myapp": app}}, "apps.yaml")
