"""The default command templates of the `systemd` and `docker-compose` strategies, run for real
over SSH by the redeploy and verify steps.

The test hosts have neither systemd nor a Docker engine: tests/shims puts stand-ins for `sudo`,
`systemctl`, `journalctl` and `docker` first on their PATH. They drive the sample app through
its ./run.sh, refuse any argument they do not know (exit 2, so a wrong template fails here), and
append each call to `.shim-calls` in the workdir, which is what these tests read back.
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.sample.build import git
from bot.steps import redeploy, verify
from bot.steps.context import StepContext
from bot.workflow.errors import HostError
from bot.workflow.model import Criterion, Incident, StepId
from runners.recording import RecordingRunner
from runners.ssh import SshRunner
from tests.fakes import RecordingNotifier, make_apps, make_ctx, make_incident, step_app
from tests.fixtures_hosts import MakeSshEnv, SshEnv, TestHost

SERVICE = "myapp"
TARGET = "v1.4.2"

# What each strategy's defaults make the stand-ins do, in order: redeploy (install, restart,
# status), then verify's `logs` (checked apart, its --since value differs per host).
EXPECTED: dict[str, list[str]] = {
    "systemd": [
        # install (`pip install -r requirements.txt`) is skipped: requirements.txt is the same
        # in v1.5.0 and v1.4.2, and pip is no shim, so the sent commands are checked for it
        f"systemctl restart {SERVICE}",
        f"systemctl is-active {SERVICE}",
        f"systemctl status --no-pager {SERVICE}",
    ],
    "docker-compose": [
        f"docker compose -p {SERVICE} build",  # always: the build puts the code in the image
        f"docker compose -p {SERVICE} down",
        f"docker compose -p {SERVICE} up -d",
        f"docker compose -p {SERVICE} ps",
    ],
}
LOGS_PREFIX = {
    "systemd": ["journalctl", "-u", SERVICE, "--no-pager", "-n", "200", "--since"],
    "docker-compose": ["docker", "compose", "-p", SERVICE, "logs", "--no-color", "--since"],
}


def shim_calls(host: TestHost) -> list[str]:
    return host.run("cat .shim-calls 2>/dev/null || true").splitlines()


def strategy_app(env: SshEnv, strategy: str, **commands: str) -> dict[str, Any]:
    """The step tests' app on the SSH hosts with `strategy` and, unless given, NO commands: the
    strategy's defaults run."""
    deploy: dict[str, Any] = {
        "strategy": strategy,
        "workdir": env.workdir,
        "service": SERVICE,
        "timeout": "60s",
    }
    if commands:
        deploy["commands"] = commands
    return step_app(env, deploy=deploy)


class Steps:
    """Step bodies on the SSH hosts: one incident, a fresh context per step."""

    def __init__(self, env: SshEnv, app: dict[str, Any], incident: Incident) -> None:
        self.apps = make_apps(app)
        self.runner = RecordingRunner(SshRunner(self.apps.apps["myapp"]))
        self.incident = incident
        self.notifier = RecordingNotifier()

    def ctx(self, step: StepId) -> StepContext:
        return make_ctx(
            self.apps, self.runner, step=step, incident=self.incident, notifier=self.notifier
        )


StepsFor = Callable[..., Steps]


@pytest.fixture
async def steps_for() -> AsyncIterator[StepsFor]:
    made: list[Steps] = []

    def make(env: SshEnv, app: dict[str, Any], **facts: Any) -> Steps:
        assert env.repo is not None
        incident = make_incident()
        # the 'tag' method: every host must end on the tag's commit
        incident.facts.assess.target_sha = env.repo.tags[TARGET]
        for key, value in facts.items():  # the code step's facts (a hotfix branch)
            setattr(incident.facts.code, key, value)
        made.append(Steps(env, app, incident))
        return made[-1]

    yield make
    for s in made:
        await s.runner.close()


def assert_on_target(env: SshEnv, host: TestHost) -> None:
    assert env.repo is not None
    assert host.run("git rev-parse HEAD").strip() == env.repo.tags[TARGET]
    assert host.run("cat VERSION").strip() == TARGET.removeprefix("v")
    assert host.health_status() == 200


def assert_logs_window(s: Steps, strategy: str, host: TestHost, call: str) -> None:
    """`call` is the logs command, its --since the restart time as verify must render it."""
    args = shlex.split(call)
    assert args[:-1] == LOGS_PREFIX[strategy], call
    facts = s.incident.facts
    at = datetime.fromisoformat(facts.redeploy.restart_at[host.name])
    offset = int(facts.redeploy.host_utc_offset[host.name])
    assert args[-1] == verify.since_value(strategy, at, offset)


@pytest.mark.parametrize("strategy", ["systemd", "docker-compose"])
async def test_default_templates_roll_back_and_verify(
    ssh_env: SshEnv, steps_for: StepsFor, strategy: str
) -> None:
    assert ssh_env.repo is not None
    for host in ssh_env.hosts:
        assert host.health_status() == 500  # v1.5.0 logs an ERROR: before the restart, ignored
    s = steps_for(ssh_env, strategy_app(ssh_env, strategy))
    started = datetime.now(UTC) - timedelta(seconds=5)

    deployed = await redeploy.run(s.ctx(StepId.REDEPLOY))
    after_redeploy = {h.name: shim_calls(h) for h in ssh_env.hosts}
    verified = await verify.run(s.ctx(StepId.VERIFY))

    assert deployed.criteria == {Criterion.DEPLOYED: True}
    assert deployed.facts.versions_by_host == {h.name: TARGET for h in ssh_env.hosts}
    assert verified.criteria == {
        Criterion.HEALTH: True,
        Criterion.LOGS: True,
        Criterion.SMOKE: True,
    }
    for host in ssh_env.hosts:
        assert_on_target(ssh_env, host)
        # The host's logs were read as it came back (Redeploy); Verify reused them and ran
        # nothing through the shims.
        assert after_redeploy[host.name][:-1] == EXPECTED[strategy]
        calls = shim_calls(host)
        assert calls == after_redeploy[host.name]
        assert_logs_window(s, strategy, host, calls[-1])
        at = datetime.fromisoformat(s.incident.facts.redeploy.restart_at[host.name])
        assert started < at < datetime.now(UTC)
        assert "ERROR" in host.run("cat app.log")  # v1.5.0's errors are there, not counted
        assert verified.hosts[host.name].ok
        sent = s.runner.commands(host.name)
        restart = "sudo systemctl restart" if strategy == "systemd" else "docker compose"
        assert any(restart in cmd for cmd in sent)
        out = s.notifier.output_of(host.name)
        if strategy == "systemd":
            assert not any("pip install" in cmd for cmd in sent)
            assert "requirements.txt unchanged: install skipped" in out
            assert f"● {SERVICE}.service - {SERVICE} (rewind test shim)" in out  # status shown
        else:
            assert not any("install skipped" in line for line in out)
            assert any("myapp-app-1" in line and "running" in line for line in out)  # ps
    assert f"✅ {ssh_env.hosts[0].name}: no errors in" in s.notifier.text


async def test_one_override_replaces_only_that_command(
    ssh_env: SshEnv, steps_for: StepsFor
) -> None:
    s = steps_for(ssh_env, strategy_app(ssh_env, "systemd", restart="./run.sh restart"))

    await redeploy.run(s.ctx(StepId.REDEPLOY))
    await verify.run(s.ctx(StepId.VERIFY))

    for host in ssh_env.hosts:
        assert_on_target(ssh_env, host)
        calls = shim_calls(host)
        assert calls[:-1] == [
            f"systemctl is-active {SERVICE}",
            f"systemctl status --no-pager {SERVICE}",
        ]
        assert_logs_window(s, "systemd", host, calls[-1])
        sent = s.runner.commands(host.name)
        assert any(cmd.endswith("&& ./run.sh restart") for cmd in sent)
        assert not any("systemctl restart" in cmd for cmd in sent)
        assert any(line.startswith("started 1.4.2") for line in s.notifier.output_of(host.name))


@pytest.mark.hosts(1)
async def test_changed_requirements_run_the_default_install(
    make_ssh_env: MakeSshEnv, sample_repo: Any, steps_for: StepsFor, tmp_path: Any
) -> None:
    env = make_ssh_env(1, repo=sample_repo)
    assert env.repo is not None
    # a 'revert' hotfix: a new commit on v1.4.2 whose requirements.txt differs
    work = tmp_path / "hotfix"
    git(["clone", "--quiet", str(env.repo.origin), str(work)], tmp_path)
    git(["checkout", "--quiet", "-b", "hotfix/myapp", TARGET], work)
    with (work / "requirements.txt").open("a") as fh:
        fh.write("# pinned again by the revert\n")
    git(["commit", "--quiet", "-am", "Revert release 1.5.0"], work)
    git(["push", "--quiet", "origin", "hotfix/myapp"], work)
    sha = git(["rev-parse", "HEAD"], work)
    s = steps_for(env, strategy_app(env, "systemd"), hotfix_ref="hotfix/myapp", hotfix_sha=sha)

    await redeploy.run(s.ctx(StepId.REDEPLOY))

    (host,) = env.hosts
    assert host.run("git rev-parse HEAD").strip() == sha
    sent = s.runner.commands(host.name)
    install = [cmd for cmd in sent if "pip install -r requirements.txt" in cmd]
    assert len(install) == 1  # the real pip, on a requirements file with nothing to install
    assert sent.index(install[0]) < next(i for i, c in enumerate(sent) if "systemctl restart" in c)
    calls = shim_calls(host)
    assert calls[:-1] == EXPECTED["systemd"]
    assert_logs_window(s, "systemd", host, calls[-1])  # its logs, read as it came back
    assert host.health_status() == 200


async def test_failing_systemctl_restart_stops_the_rollout(
    ssh_env: SshEnv, steps_for: StepsFor
) -> None:
    web1, web2 = ssh_env.hosts
    app = strategy_app(ssh_env, "systemd")
    app["deploy"]["rolling"] = 1
    s = steps_for(ssh_env, app)
    web1.run("touch .shim-fail-restart")

    with pytest.raises(HostError) as failure:
        await redeploy.run(s.ctx(StepId.REDEPLOY))

    err = failure.value
    assert err.host == "web1"
    assert err.what == "`restart` failed (exit 1)"
    assert f"Job for {SERVICE}.service failed" in err.detail
    assert "Already on the target: none." in err.hint and "Not started: web2." in err.hint
    assert not err.hosts["web1"].ok and "web2" not in err.hosts
    assert s.incident.facts.redeploy.redeployed_hosts == []
    # web1 stopped at the restart: no status, no version; web2 was never touched
    assert shim_calls(web1) == [f"systemctl restart {SERVICE}"]
    assert shim_calls(web2) == []
    assert web2.run("git describe --tags --always").strip() == "v1.5.0"
    assert web2.health_status() == 500
    assert any(f"Job for {SERVICE}.service failed" in line for line in s.notifier.output_of("web1"))


def test_the_apps_files_checkout_strategies_are_the_git_checkout_ones() -> None:
    """`deploy.checkout` (a scratch copy of the deployed commit can be made) agrees with the
    strategies themselves."""
    from bot.config.strategy_names import CHECKOUT_STRATEGIES
    from runners.strategies import REGISTRY
    from runners.strategies.base import GitCheckout

    assert {n for n, s in REGISTRY.items() if isinstance(s, GitCheckout)} == CHECKOUT_STRATEGIES
