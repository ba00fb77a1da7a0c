"""Hosts verified as they come back, on real SSH hosts serving the sample app: each host's own
health URLs and logs are checked as soon as its redeploy ends (per batch when rolling), a
rolling rollout stops before the next batch at a host that fails them, and Verify reuses what
passed. The order of events is read on the hosts themselves (their command logs, the times they
wrote, the app's own request counter), never from how long anything took."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config.apps_file import AppsFile
from bot.steps import redeploy, verify
from bot.steps.host_checks import REUSE_FOR
from bot.workflow.errors import HostError, StepError
from bot.workflow.model import Criterion, Incident, StepId
from runners.ssh import SshRunner
from tests.fakes import RecordingNotifier, make_apps, make_ctx, make_incident, step_app
from tests.fixtures_hosts import SshEnv, TestHost

# Each command writes the host's own time first (GNU date: seconds and nanoseconds).
STAMP = "date +%s.%N >> {file}"
FETCH = "git fetch --tags --force origin {ref} && git checkout --force FETCH_HEAD"


class Run:
    """One incident's Redeploy and Verify on the SSH hosts, a fresh context per step."""

    def __init__(self, apps: AppsFile, runners: list[SshRunner]) -> None:
        self.apps = apps
        self.incident: Incident = make_incident()
        self.notifier = RecordingNotifier()
        self.runners = runners

    def ctx(self, step: StepId, apps: AppsFile | None = None) -> Any:
        apps = apps or self.apps
        runner = SshRunner(apps.apps["myapp"])
        self.runners.append(runner)
        return make_ctx(apps, runner, step=step, incident=self.incident, notifier=self.notifier)


@pytest.fixture
async def runners() -> AsyncIterator[list[SshRunner]]:
    made: list[SshRunner] = []
    yield made
    for r in made:
        await r.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stamps(host: TestHost, file: str) -> list[float]:
    return [float(t) for t in host.run(f"cat {file} 2>/dev/null || true").split()]


def logs_reads(host: TestHost) -> list[str]:
    return [c for c in host.commands() if "app.log" in c]


@pytest.mark.hosts(2)
async def test_rolling_starts_the_next_batch_only_once_the_last_is_verified(
    ssh_env: SshEnv, runners: list[SshRunner]
) -> None:
    web1, web2 = ssh_env.hosts
    app = step_app(ssh_env)
    app["deploy"]["rolling"] = 1
    commands = app["deploy"]["commands"]
    commands["fetch"] = STAMP.format(file=".fetched_at") + " && " + FETCH
    commands["logs"] = STAMP.format(file=".logs_read_at") + " && tail -n 200 app.log"
    run = Run(make_apps(app), runners)

    outcome = await redeploy.run(run.ctx(StepId.REDEPLOY))

    assert outcome.criteria == {Criterion.DEPLOYED: True}
    verified = run.incident.facts.redeploy.verified
    assert sorted(verified) == ["web1", "web2"] and all(v.passed for v in verified.values())
    assert [c.kind for c in verified["web1"].checks] == ["health", "health", "logs"]
    # web1 was verified (health, then its logs read) before web2's redeploy began: the first
    # thing web2 ran is its fetch, after web1's logs were read.
    (web1_checked,) = stamps(web1, ".logs_read_at")
    (web2_fetched,) = stamps(web2, ".fetched_at")
    (web1_fetched,) = stamps(web1, ".fetched_at")
    assert web1_fetched < web1_checked < web2_fetched
    assert "checked as it came back: health 2/2, logs clean" in outcome.hosts["web1"].summary
    assert any("Batch 2/2: web2" in s for s in run.notifier.said)


@pytest.mark.hosts(3)
async def test_a_host_failing_its_checks_stops_the_rollout_before_the_next_batch(
    ssh_env: SshEnv, runners: list[SshRunner]
) -> None:
    web1, web2, web3 = ssh_env.hosts
    app = step_app(ssh_env, verify={"health_timeout": "1s", "health_interval": "0.2s"})
    app["deploy"]["rolling"] = 1
    good = make_apps(app)
    nothing_there = free_port()
    app["hosts"][1]["vars"]["app_port"] = str(nothing_there)  # web2's health URLs: no answer
    run = Run(make_apps(app), runners)

    with pytest.raises(HostError) as failure:
        await redeploy.run(run.ctx(StepId.REDEPLOY))

    err = failure.value
    assert err.host == "web2"
    assert err.what.startswith("web2 failed its checks after its redeploy: health: ")
    assert f"http://127.0.0.1:{nothing_there}/healthz (web2) no answer" in err.what
    assert "Already on the target: web1." in err.hint
    assert "Not started: web3." in err.hint
    assert "On v1.4.2 but failing its checks: web2" in err.hint
    assert "Retry redeploys and checks it again" in err.hint
    assert err.hosts["web1"].ok and not err.hosts["web2"].ok and "web3" not in err.hosts
    assert not any("Batch 3/3" in s for s in run.notifier.said)
    assert web2.health_status() == 200  # the redeploy itself went through...
    assert run.incident.facts.redeploy.redeployed_hosts == ["web1"]  # ...but is not done
    assert not run.incident.facts.redeploy.verified["web2"].passed
    assert web3.commands() == [] and web3.health_status() == 500  # never touched

    # Retry with web2's URLs right: web2 is redeployed and checked again, then web3.
    web1.clear_commands()
    outcome = await redeploy.run(run.ctx(StepId.REDEPLOY, good))
    assert outcome.facts.redeployed_hosts == ["web1", "web2", "web3"]
    assert web1.commands() == []
    assert all(v.passed for v in outcome.facts.verified.values())

    # Verify reuses every host's own checks: no host is sent its logs read again.
    sent = {h.name: len(h.commands()) for h in ssh_env.hosts}
    result = await verify.run(run.ctx(StepId.VERIFY, good))
    assert all(result.criteria.values())
    assert [len(logs_reads(h)) for h in ssh_env.hosts] == [0, 2, 1]
    assert {h.name: len(h.commands()) for h in ssh_env.hosts if h is not web1} == {
        "web2": sent["web2"], "web3": sent["web3"]
    }  # web1 runs the smoke tests; web2 and web3 get nothing  # fmt: skip


SLOW_RESTART = """\
import sys, time, urllib.request
# Restart only once the fast host's new process answered a health probe (at most 30 s).
url = open(".slow").read().strip()
for _ in range(300):
    try:
        text = urllib.request.urlopen(url, timeout=1).read().decode()
    except OSError:
        text = ""
    if 'handler="/api/health",code="200"' in text:
        open(".slow_saw", "w").write("probed")
        break
    time.sleep(0.1)
"""


@pytest.mark.hosts(2)
async def test_each_host_is_probed_as_its_own_restart_ends_and_verify_reuses_it(
    ssh_env: SshEnv, runners: list[SshRunner]
) -> None:
    web1, web2 = ssh_env.hosts
    app = step_app(ssh_env)
    # web2's restart waits until web1's new process was probed, and says whether it saw it.
    web2.run(f"echo http://127.0.0.1:{web1.app_port}/metrics > .slow")
    web2.run(f"cat > slow_restart.py <<'EOF'\n{SLOW_RESTART}EOF")
    restart = "if [ -f .slow ]; then python3 slow_restart.py; fi; ./run.sh restart"
    app["deploy"]["commands"]["restart"] = restart
    run = Run(make_apps(app), runners)

    await redeploy.run(run.ctx(StepId.REDEPLOY))

    # web1's health was probed while web2 was still restarting (web2 went on only then).
    assert web2.run("cat .slow_saw 2>/dev/null || echo never").strip() == "probed"
    assert all(v.passed for v in run.incident.facts.redeploy.verified.values())

    sent = {h.name: len(h.commands()) for h in ssh_env.hosts}
    outcome = await verify.run(run.ctx(StepId.VERIFY))

    assert outcome.criteria == {
        Criterion.HEALTH: True,
        Criterion.LOGS: True,
        Criterion.SMOKE: True,
    }
    assert len(web2.commands()) == sent["web2"]  # nothing re-read on web2
    assert len(logs_reads(web1)) == 1  # web1: its smoke tests only, no second logs read
    thread = run.notifier.text
    assert "Checked as each host came back" in thread
    line = f"✅ http://127.0.0.1:{web2.app_port}/api/health (web2): 200"
    assert line in thread and "read as web2 came back" in thread
    assert "✅ web1: no errors in" in thread
    assert "4 health check(s) passing" in outcome.summary
    assert outcome.hosts["web2"].ok and outcome.hosts["web2"].summary == "health 2/2, logs clean"

    # Checks read long ago (a Verify that runs much later) are read again.
    for kept in run.incident.facts.redeploy.verified.values():
        kept.at = (datetime.now(UTC) - timedelta(seconds=REUSE_FOR + 60)).isoformat()
    run.notifier.said.clear()
    await verify.run(run.ctx(StepId.VERIFY))
    assert "Checked as each host came back" not in run.notifier.text
    assert len(logs_reads(web2)) == 2


@pytest.mark.hosts(2)
async def test_without_rolling_a_failing_host_does_not_stop_the_others_and_verify_says_it(
    ssh_env: SshEnv, runners: list[SshRunner]
) -> None:
    web1, web2 = ssh_env.hosts
    app = step_app(ssh_env, verify={"health_timeout": "1s", "health_interval": "0.2s"})
    nothing_there = free_port()
    app["hosts"][1]["vars"]["app_port"] = str(nothing_there)
    run = Run(make_apps(app), runners)

    outcome = await redeploy.run(run.ctx(StepId.REDEPLOY))

    assert outcome.facts.redeployed_hosts == ["web1", "web2"]
    assert "web2 is redeployed, but its checks failed: health: " in run.notifier.text
    assert "Verify checks it again" in run.notifier.text
    assert not outcome.facts.verified["web2"].passed

    with pytest.raises(StepError) as failure:
        await verify.run(run.ctx(StepId.VERIFY))

    err = failure.value
    assert err.what.startswith("Verification failed: health: ")
    assert f"http://127.0.0.1:{nothing_there}/healthz (web2) no answer" in err.what
    assert err.hosts["web1"].ok and not err.hosts["web2"].ok
    assert len(logs_reads(web2)) == 2  # checked again by Verify
    assert len(logs_reads(web1)) == 1  # reused
