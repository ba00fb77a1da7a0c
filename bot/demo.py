"""`python -m bot demo`: a full rollback of the bundled sample app, on this machine.

No Slack workspace, Redis server or SSH server needed: two "hosts" are directories served by
the local runner, the state lives in memory, and the thread is printed as Slack would show it.
The sample app is real: it serves /healthz on its own port and migrates a real SQLite database.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from bot.apps import parse_apps
from bot.engine import OpenRequest
from bot.sample.build import build_sample_origin
from bot.sample.hosts import provision_host_checkout, start_app, stop_app
from bot.store_memory import MemoryStore
from bot.terminal import auto_chooser, build_terminal_engine, drive, prompt_chooser, terminal_actor


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
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"],
        cwd=first, check=True, capture_output=True,
    )  # fmt: skip
    for workdir, _ in hosts.values():
        start_app(workdir)
    print(f"Demo: sample app `myapp` {repo.bad} (broken) running on "
          + ", ".join(f"{n} (port {p})" for n, (_, p) in hosts.items())
          + f"; its database is migrated to {repo.bad}'s head. Files in {root}.\n", file=out)  # fmt: skip
    return hosts, repo.origin


async def run_demo(*, yes: bool, out: TextIO = sys.stdout, root: Path | None = None) -> int:
    from bot.terminal_notifier import TerminalNotifier

    root = root or Path(tempfile.mkdtemp(prefix="rewind-demo-"))
    hosts, origin = _prepare(root, out)
    try:
        incidents = root / "incidents"
        incidents.mkdir(exist_ok=True)
        subprocess.run(["git", "init", "-q", str(incidents)], check=True)
        apps = parse_apps(
            {"apps": {"myapp": demo_config(root, hosts, origin)}, "incidents": {"dir": str(incidents)}},
            "demo",
        )  # fmt: skip
        store = MemoryStore()
        notifier = TerminalNotifier(out=out, apps=apps, files_dir=root / "files")
        engine, queue = build_terminal_engine(apps, store, notifier, root / "workspace")
        requester = terminal_actor(apps, "U0CAROL")
        os.environ.setdefault("GIT_AUTHOR_NAME", "Rewind demo")
        incident = await drive(
            engine, queue, store, apps,
            OpenRequest("myapp", "v1.4.2", "checkout returns 500 after the v1.5.0 deploy", requester),
            auto_chooser(apps) if yes else prompt_chooser(out=out), out,
        )  # fmt: skip
        await notifier.flush(incident)
        print(f"\nOutcome: {incident.outcome or incident.status.value}", file=out)
        for name, (workdir, port) in hosts.items():
            version = subprocess.run(
                ["git", "describe", "--tags", "--always"], cwd=workdir, capture_output=True,
                text=True, check=False,
            ).stdout.strip()  # fmt: skip
            print(f"  {name}: {version}, http://127.0.0.1:{port}/healthz", file=out)
        return 0 if incident.status.value == "completed" else 1
    finally:
        for workdir, _ in hosts.values():
            try:
                stop_app(workdir)
            except RuntimeError:
                pass
