"""Rewind as it is deployed: the Procfile's processes, from a fresh `git clone`, with defaults.

The repository (its committed HEAD) is cloned into a temporary directory; `config/apps.yaml` is
written there as the README's "Running it for real" says; one `serve` and two `worker`s run as
real processes with the clone as their working directory and only the README's variables
(no REWIND_WORKSPACE, no test-only switch). A production incident is driven end to end as
Slack drives it — signed HTTP, then Socket Mode — on the test bench's sshd hosts, PostgreSQL,
Redis and Slack fake: four-eyes, database approval, redeploy, verify, report, freeze.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
import yaml

from bot.store.redis_store import RedisStore, connect
from tests.fakes import with_step_commands
from tests.fixtures_hosts import SshEnv
from tests.harness import SlackView
from tests.processes import end, free_port, run_bot, wait_http
from tests.slack_fake import SlackFake, click, send_command
from tests.socket_mode_fake import SocketModeFake
from tests.test_workflow_e2e import db_revision

ROOT = Path(__file__).resolve().parents[1]
CHANNEL = "C0INCIDENT"
SIGNING_SECRET = "deployed-signing-secret"
BOT_TOKEN = "xoxb-deployed-1234567890"
APP_TOKEN = "xapp-1-deployed-0987654321"
START = "myapp v1.4.2 checkout returns 500"


def readme_variables() -> set[str]:
    """The variables of the README's table: the only ones these processes get."""
    text = (ROOT / "README.md").read_text()
    return set(re.findall(r"^\| `([A-Z_]+)`", text, re.M))


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed HEAD, as a user gets it. No remote: a report committed there stays there."""
    dest = tmp_path_factory.mktemp("deployed") / "rewind"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "remote", "remove", "origin"], check=True)
    return dest


def write_apps_file(clone: Path, app: dict[str, Any]) -> None:
    (clone / "config" / "apps.yaml").write_text(yaml.safe_dump({"apps": {"myapp": app}}))


def production_app(env: SshEnv) -> dict[str, Any]:
    app = with_step_commands(env.app_config())
    app["environment"] = "production"
    # The apps file's own keys, as a user writes them; 15 minutes of monitoring is no test.
    app["monitor"] = {"duration": "2s", "interval": "0.5s", "summary_every": "1s"}
    app["verify"] = {"health_timeout": "30s", "health_interval": "0.5s"}
    return app


@dataclass
class Procfile:
    """The Procfile's processes, started from the clone; stopped (SIGTERM) at the end."""

    clone: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    ports: dict[str, str] = field(default_factory=dict)
    _files: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, *args: str, **env: str) -> None:
        unknown = set(self.env) | set(env)
        unknown -= readme_variables() | {"PATH", "HOME", "LANG"}
        assert not unknown, f"not in the README's variables: {unknown}"
        log = self.clone.parent / f"{name}.log"
        out = log.open("wb")
        self._files.append(out)
        self.logs[name] = log
        self.ports[name] = env.get("PORT") or env.get("METRICS_PORT") or ""
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            cwd=self.clone, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    async def stop(self) -> None:
        await asyncio.to_thread(end, self.procs.values(), 20)
        for f in self._files:
            f.close()

    def assert_running(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, (
                f"{name} exited {proc.returncode}:\n{self.log(name)[-3000:]}"
            )


@pytest.fixture
async def procfile(
    clone: Path, slack: SlackFake, redis_url: str
) -> AsyncIterator[Callable[..., Awaitable[Procfile]]]:
    started: list[Procfile] = []

    async def run(*, socket_mode: bool = False) -> Procfile:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": slack.api_url,  # the Slack fake: the README says why one sets it
            "REDIS_URL": redis_url,  # the test database, flushed per test
        }
        if socket_mode:
            env["SLACK_APP_TOKEN"] = APP_TOKEN
        else:
            env["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
        procs = Procfile(clone, env)
        started.append(procs)
        # Ports are pinned, as for a Prometheus scrape config (see the README): other tests on
        # this machine use 3000 and 9300.
        procs.start("web", "serve", PORT=str(free_port()))
        # The workers log JSON (for a log pipeline), the web process text: both are tried.
        procs.start("worker1", "worker", METRICS_PORT=str(free_port()), LOG_FORMAT="json")
        procs.start("worker2", "worker", METRICS_PORT=str(free_port()), LOG_FORMAT="json")
        for name in ("web", "worker1", "worker2"):
            await wait_http(procs.url(name, "/metrics"), check=procs.assert_running)
        return procs

    yield run
    for procs in started:
        await procs.stop()


@dataclass
class Driver(SlackView):
    """Whoever talks to the bot as Slack does: signed HTTP, or Socket Mode envelopes."""

    command_fn: Callable[[str, str, str], Awaitable[str]]  # text, user, response_url -> ack
    click_fn: Callable[[dict[str, Any], str, str, str], Awaitable[None]]
    names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def command(self, text: str, user: str) -> str:
        name = f"deployed{next(self.names)}"
        ack = await self.command_fn(text, user, self.slack.response_url(name))
        assert "Checking `myapp` v1.4.2" in ack or not text.startswith("myapp"), ack
        return await self.reply(name, timeout=60)

    async def click(self, message: dict[str, Any], label: str, user: str) -> str:
        name = f"deployed{next(self.names)}"
        await self.click_fn(message, label, user, self.slack.response_url(name))
        return name


async def production_incident(
    drive: Driver, env: SshEnv, procs: Procfile, redis_url: str, clone: Path
) -> None:
    """The runbook, in production, as people in Slack do it."""
    assert env.db_url and db_revision(env.db_url) == "d4e5f6a1b2c3"
    opened = await drive.command(START, "U0ALICE")  # an approver asks…
    assert "opened for `myapp`" in opened, opened

    decision = await drive.gate("Roll back", timeout=120)
    assert "migration" in drive.slack.all_text(decision).lower()
    await drive.click(decision, "Roll back", "U0ALICE")

    start_approval = await drive.gate("Approve", timeout=120)
    own = await drive.click(start_approval, "Approve", "U0ALICE")
    assert "four-eyes" in await drive.reply(own, timeout=60)  # …and may not approve her own request
    await drive.click(start_approval, "Approve", "U0BOB")

    downgrade = await drive.gate("Approve downgrade", timeout=180)
    assert "coupon" in drive.slack.all_text(downgrade).lower()  # the SQL preview
    await drive.click(downgrade, "Approve downgrade", "U0BOB")

    parent = await drive.parent_shows("All completion criteria are met", timeout=180)
    for step in ("Roll back code", "Roll back database", "Redeploy", "Verify", "Monitor"):
        assert step in parent, step

    store = RedisStore(connect(redis_url))
    try:
        incident = (await store.recent_incidents(1))[0]
    finally:
        await store.r.aclose()
    assert incident.status.value == "completed"
    assert db_revision(env.db_url) == "b2c3d4e5f6a1"
    for host in env.hosts:
        assert host.run("git rev-parse HEAD").strip() == incident.facts.code.hotfix_sha
        assert host.run("cat VERSION").strip() == "1.4.2"
        assert host.health_status() == 200
    report = Path(incident.facts.report.path)
    assert report.parent == clone / "incidents"  # the default `incidents/`, from the clone
    assert "What failed" in report.read_text()
    assert (clone / "var" / "repos").is_dir()  # the default workspace: the clone's var/
    assert not list((clone / "var").rglob("var"))  # never var/…/var/… again

    async with aiohttp.ClientSession() as session:
        async with session.get(procs.url("web", "/api/freeze/myapp")) as resp:
            assert resp.status == 423
            assert (await resp.json())["incident"] == incident.id
        metrics = ""
        for name in ("web", "worker1", "worker2"):
            async with session.get(procs.url(name, "/metrics")) as resp:
                metrics += await resp.text()
    for series in (
        "rewind_build_info{",
        'rewind_incidents{state="running"}',
        'rewind_incidents_ended_total{state="completed"} 1.0',
        'rewind_step_seconds_bucket{le="1.0",step="redeploy"}',
        'rewind_ssh_command_seconds_count{app="myapp",host="web1"}',
        'rewind_slack_api_calls_total{method="chat.postMessage"}',
        "rewind_slack_rate_limited_total",
        "rewind_queue_depth",
    ):
        assert series in metrics, series
    assert not any(secret in metrics for secret in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET))
    check_logs(procs, incident.id)


def check_logs(procs: Procfile, incident_id: str) -> None:
    secrets = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET)
    for name in procs.logs:
        log = procs.log(name)
        assert "Traceback" not in log, log[-3000:]
        assert "As you gave `client` as well" not in log
        assert not any(s in log for s in secrets), f"a secret in {name}'s log"
    web = procs.log("web")
    clone = procs.clone
    assert f"config {clone}/config/apps.yaml, workspace {clone}/var" in web
    assert f"incidents {clone}/incidents" in web
    # The workers log JSON: one object per line, the incident's id on each line of its work.
    lines = (procs.log("worker1") + procs.log("worker2")).splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert records and all({"time", "level", "message"} <= r.keys() for r in records)
    mine = [r for r in records if incident_id in r["message"] or r.get("incident")]
    assert all(r.get("incident") == incident_id for r in mine), mine
    steps = [r for r in records if r["message"].startswith("step ")]
    assert len(steps) >= 14 and all(r.get("incident") == incident_id for r in steps), steps


async def test_a_production_incident_over_signed_http(
    procfile: Callable[..., Awaitable[Procfile]],
    slack: SlackFake,
    ssh_env_migrated: SshEnv,
    redis_url: str,
    clone: Path,
) -> None:
    write_apps_file(clone, production_app(ssh_env_migrated))
    procs = await procfile()
    events = procs.url("web", "/slack/events")

    async with aiohttp.ClientSession() as session:

        async def command(text: str, user: str, response_url: str) -> str:
            resp = await send_command(
                session, events, SIGNING_SECRET, text=text, user_id=user, response_url=response_url
            )
            assert resp.status == 200
            return resp.text

        async def press(message: dict[str, Any], label: str, user: str, response_url: str) -> None:
            resp = await click(
                session, events, SIGNING_SECRET, message=message, label=label, user_id=user,
                channel_id=CHANNEL, response_url=response_url,
            )  # fmt: skip
            assert resp.status == 200

        drive = Driver(slack, command, press)
        await production_incident(drive, ssh_env_migrated, procs, redis_url, clone)
        unsigned = await session.post(events, data={"command": "/rollback", "text": "list"})
        assert unsigned.status == 401
    slack.assert_no_errors()


async def test_a_production_incident_over_socket_mode(
    procfile: Callable[..., Awaitable[Procfile]],
    slack: SlackFake,
    ssh_env_migrated: SshEnv,
    redis_url: str,
    clone: Path,
) -> None:
    write_apps_file(clone, production_app(ssh_env_migrated))
    async with SocketModeFake(slack) as sm:
        procs = await procfile(socket_mode=True)
        await sm.connected()

        async def command(text: str, user: str, response_url: str) -> str:
            envelope = await sm.command(text, user_id=user, response_url=response_url)
            return sm.ack_text(envelope)

        async def press(message: dict[str, Any], label: str, user: str, response_url: str) -> None:
            await sm.click(message, label, user_id=user, channel_id=CHANNEL,
                           response_url=response_url)  # fmt: skip

        drive = Driver(slack, command, press)
        await production_incident(drive, ssh_env_migrated, procs, redis_url, clone)
        assert sm.opened >= 1
        kinds = [e.type for e in sm.envelopes]
        assert kinds == ["slash_commands"] + ["interactive"] * 4
        assert all(e.ack is not None for e in sm.envelopes)
        assert not sm.stray
        async with aiohttp.ClientSession() as session:  # no unsigned door in Socket Mode
            resp = await session.post(procs.url("web", "/slack/events"), data={"text": "list"})
            assert resp.status == 404
    slack.assert_no_errors()


async def test_the_terminal_front_from_the_clone(
    clone: Path, ssh_env: SshEnv, redis_url: str
) -> None:
    """Slack is down: the same rollback from a shell in the clone, with the defaults."""
    app = production_app(ssh_env)
    app["environment"] = "staging"  # production from a terminal is break-glass (issue 9's tests)
    write_apps_file(clone, app)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "REDIS_URL": redis_url,
    }
    args = ["rollback", "myapp", "v1.4.2", "--reason", "checkout returns 500", "--yes"]
    code, out = await run_bot(args, env, clone, timeout=300)
    assert code == 0, out[-4000:]
    assert "Traceback" not in out
    for host in ssh_env.hosts:
        assert host.run("cat VERSION").strip() == "1.4.2"
        assert host.health_status() == 200
    assert (clone / "var" / "repos").is_dir() and not list((clone / "var").rglob("var"))
    assert any((clone / "incidents").glob("rollback-*-myapp-*.md"))
