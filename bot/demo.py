"""`python -m bot demo`: a full rollback of the bundled sample app, on this machine.

No Slack workspace, Redis server or SSH server needed: two "hosts" are directories served by
the local runner, the state lives in memory, and the thread is printed as Slack would show it.
The sample app is real: it serves /healthz on its own port and migrates a real SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from bot.apps_file import parse_apps
from bot.console import Console
from bot.engine import OpenRequest
from bot.people import People
from bot.sample.build import build_sample_origin
from bot.sample.hosts import provision_host_checkout, start_app, stop_app
from bot.store_memory import MemoryStore
from bot.terminal.front import (
    Chooser,
    Driver,
    Prompter,
    Reply,
    auto_chooser,
    build_terminal_engine,
    terminal_actor,
)
from bot.workflow.model import Gate, Incident
from bot.workflow.policy import Actor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_config(root: Path, hosts: dict[str, tuple[Path, int]], origin: Path) -> dict[str, Any]:
    db_file = root / "db" / "app.db"
    backups = root / "backups"
    backups.mkdir(parents=True, exist_ok=True)
    db = shlex.quote(str(db_file))
    count_users = "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from users').fetchone()[0])"  # noqa: E501
    return {
        "environment": "production",
        "repo": str(origin),
        "incident_channel": "C0INCIDENT",
        "notify": ["C0STAKEHOLDERS"],
        "mention": ["<!subteam^S0ONCALL>"],
        "operators": ["U0CAROL"],
        "approvers": ["U0ALICE"],
        "ssh": {"transport": "local"},
        "hosts": [
            {"name": name, "workdir": str(path), "vars": {"app_port": str(port)}}
            for name, (path, port) in hosts.items()
        ],
        "deploy": {
            "strategy": "commands",
            "workdir": "/srv/myapp",
            "commands": {
                "fetch": "git fetch --tags --force origin {ref} && git checkout --force FETCH_HEAD",
                "install": "true",
                "restart": "./run.sh restart",
                "stop": "./run.sh stop",
                "start": "./run.sh start",
                "status": "./run.sh status",
                "logs": "tail -n 200 app.log",
                "version": "git describe --tags --always",
            },
        },
        "database": {
            "run_on": next(iter(hosts)),
            "alembic": f"{shlex.quote(sys.executable)} -m alembic -c alembic.ini",
            "backup": f"cp {db} {{backup}}",
            "restore": f"cp {{backup}} {db}",
            "verify": f"{shlex.quote(sys.executable)} -c {shlex.quote(count_users)} {db}",
            "backups": f"ls -1t {shlex.quote(str(backups))}/myapp-*.sql",
            "backup_dir": str(backups),
        },
        "health": [
            {"url": "http://127.0.0.1:{app_port}/healthz", "status": 200},
            {"url": "http://127.0.0.1:{app_port}/api/health", "json": {"status": "ok"}},
        ],
        "smoke": ["./smoke.sh login", "./smoke.sh checkout"],
        "monitor": {"duration": "6s", "interval": "2s", "summary_every": "4s"},
        "verify": {"health_timeout": "20s", "health_interval": "0.5s"},
    }


def _prepare(root: Path, out: TextIO) -> tuple[dict[str, tuple[Path, int]], Path]:
    repo = build_sample_origin(root / "sample")
    (root / "db").mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{root / 'db' / 'app.db'}"
    hosts: dict[str, tuple[Path, int]] = {}
    for name in ("web1", "web2"):
        workdir = root / "hosts" / name / "myapp"
        port = _free_port()
        provision_host_checkout(repo.origin, workdir, ref=repo.bad, app_port=port, db_url=db_url)
        hosts[name] = (workdir, port)
    first = next(iter(hosts.values()))[0]
    migrate = [sys.executable, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"]
    subprocess.run(migrate, cwd=first, check=True, capture_output=True)
    for workdir, _ in hosts.values():
        start_app(workdir)
    (root / "incidents").mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root / "incidents")], check=True)
    where = ", ".join(f"{n} (port {p})" for n, (_, p) in hosts.items())
    print(
        f"Demo: sample app `myapp` {repo.bad} (broken) running on {where}; its database is "
        f"migrated to {repo.bad}'s head. Files in {root}.\n",
        file=out,
    )
    return hosts, repo.origin


def _versions(hosts: dict[str, tuple[Path, int]]) -> dict[str, str]:
    describe = ["git", "describe", "--tags", "--always"]
    return {
        name: subprocess.run(
            describe, cwd=workdir, capture_output=True, text=True, check=False
        ).stdout.strip()
        for name, (workdir, _) in hosts.items()
    }


async def _run(
    root: Path, hosts: dict[str, tuple[Path, int]], origin: Path, yes: bool, out: TextIO
) -> Incident:
    from bot.terminal.notifier import TerminalNotifier

    config = {"myapp": demo_config(root, hosts, origin)}
    people = {"carol": "U0CAROL", "alice": "U0ALICE", "oncall": "S0ONCALL"}
    apps = parse_apps(
        {"apps": config, "incidents": {"dir": str(root / "incidents")}, "people": people}, "demo"
    )
    store = MemoryStore()
    notifier = TerminalNotifier(out=out, apps=apps, files_dir=root / "files", stand_in=True)
    engine, queue = build_terminal_engine(apps, store, notifier, root / "workspace")
    reason = "checkout returns 500 after the v1.5.0 deploy"
    carol = terminal_actor(apps, "U0CAROL")
    request = OpenRequest("myapp", "v1.4.2", reason, carol)
    console = Console(out=out)
    console.install()
    try:
        if yes:
            # The demo stands in for alice too: her approvals are the four-eyes of production.
            alice = terminal_actor(apps, "U0ALICE")
            chooser: Chooser = _as_approver(auto_chooser(apps, carol), alice)
        else:
            chooser = Prompter(console, apps, carol, People.from_apps_file(people))
        driver = Driver(engine, queue, store, chooser, out, console)
        incident = await driver.open(request)
    finally:
        console.uninstall()
    await notifier.flush(incident)
    return incident


def _as_approver(choose: Chooser, approver: Actor) -> Chooser:
    async def wrapped(incident: Incident, gate: Gate) -> Reply:
        reply = await choose(incident, gate)
        if reply.choice in {"approve", "restore"}:
            return Reply(reply.choice, reply.option, approver)
        return reply

    return wrapped


def run_demo(
    *, yes: bool, keep: bool = False, out: TextIO = sys.stdout, root: Path | None = None
) -> int:
    root = root or Path(tempfile.mkdtemp(prefix="rewind-demo-"))
    hosts, origin = _prepare(root, out)
    try:
        incident = asyncio.run(_run(root, hosts, origin, yes, out))
        print(f"\nOutcome: {incident.outcome or incident.status.value}", file=out)
        for name, version in _versions(hosts).items():
            print(f"  {name}: {version}, http://127.0.0.1:{hosts[name][1]}/healthz", file=out)
        return 0 if incident.status.value == "completed" else 1
    finally:
        for workdir, _ in hosts.values():
            with contextlib.suppress(RuntimeError):
                stop_app(workdir)
