"""`python -m bot demo`: a full rollback of the bundled sample app, on this machine.

No Slack workspace, Redis server or SSH server needed: two "hosts" are directories served by
the local runner, the state lives in memory, and the thread is printed as Slack would show it.
The sample app is real: it serves /healthz on its own port and migrates a real SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from bot.config.apps_file import parse_apps
from bot.fronts.terminal.console import Console
from bot.fronts.terminal.front import (
    START_REDIS,
    Chooser,
    CtrlC,
    Driver,
    Prompter,
    Reply,
    auto_chooser,
    build_terminal_runner,
    terminal_actor,
)
from bot.fronts.terminal.notifier import TerminalNotifier
from bot.fronts.terminal.people import People
from bot.fronts.terminal.views import CompactNotifier, LiveNotifier
from bot.incidents.service import OpenRequest
from bot.sample.build import build_sample_origin
from bot.sample.hosts import app_dir, provision_host_releases, start_app, stop_app
from bot.store.memory import MemoryStore
from bot.workflow.model import Gate, Incident
from bot.workflow.policy import Actor
from bot.workflow.render_text import wrapped
from bot.workflow.version import Version


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
            {
                "name": name,
                "address": "127.0.0.1",
                "workdir": str(path),
                "vars": {"app_port": str(port)},
            }
            for name, (path, port) in hosts.items()
        ],
        "deploy": {
            "strategy": "commands",
            "workdir": "/srv/myapp",
            "releases": 3,  # each host keeps v1.4.2: the redeploy switches back, no fetch
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
        # Each host's resource usage, shown before and after (from /proc: Linux only). The
        # limits are the most there is: the demo shows the figures, a busy laptop fails nothing.
        **({"resources": {"cpu": 100, "memory": 100, "disk": 100}} if _PROC.exists() else {}),
    }


_PROC = Path("/proc/stat")


def _prepare(root: Path, out: TextIO) -> tuple[dict[str, tuple[Path, int]], Path]:
    repo = build_sample_origin(root / "sample")
    (root / "db").mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{root / 'db' / 'app.db'}"
    hosts: dict[str, tuple[Path, int]] = {}
    for name in ("web1", "web2"):
        workdir = root / "hosts" / name / "myapp"
        port = _free_port()
        # v1.4.2 deployed before v1.5.0, and kept: the rollback switches back to it.
        provision_host_releases(
            repo.origin, workdir, ref=repo.bad, app_port=port, db_url=db_url, kept=[repo.good]
        )
        hosts[name] = (workdir, port)
    first = next(iter(hosts.values()))[0]
    migrate = [sys.executable, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"]
    subprocess.run(migrate, cwd=app_dir(first), check=True, capture_output=True)
    for workdir, _ in hosts.values():
        start_app(workdir)
    (root / "incidents").mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root / "incidents")], check=True)
    ports = ", ".join(str(p) for _, p in hosts.values())
    print(wrapped(f"Demo: sample app myapp {repo.bad} (broken: /healthz answers 500) runs on "
                  f"web1 and web2 (ports {ports}), its database migrated to {repo.bad}."),
          file=out)  # fmt: skip
    print(wrapped(f"Files: {root}"), file=out)
    return hosts, repo.origin


def _serving(hosts: dict[str, tuple[Path, int]]) -> dict[str, str]:
    """What each host's app answers now: its /version, and /healthz's status."""
    found = {}
    for name, (_, port) in hosts.items():
        base = f"http://127.0.0.1:{port}"
        try:
            with urllib.request.urlopen(f"{base}/version", timeout=5) as resp:
                version = resp.read().decode().strip()
        except OSError as exc:
            found[name] = f"not answering ({exc})"
            continue
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
                health = str(resp.status)
        except urllib.error.HTTPError as exc:
            health = str(exc.code)
        except OSError:
            health = "no answer"
        found[name] = f"serves {version}, /healthz {health}"
    return found


async def _run(
    root: Path, hosts: dict[str, tuple[Path, int]], origin: Path, yes: bool, out: TextIO
) -> Incident:
    config = {"myapp": demo_config(root, hosts, origin)}
    people = {"carol": "U0CAROL", "alice": "U0ALICE", "oncall": "S0ONCALL"}
    apps = parse_apps(
        {"apps": config, "incidents": {"dir": str(root / "incidents")}, "people": people}, "demo"
    )
    store = MemoryStore()
    live = LiveNotifier(out, apps=apps, interactive=not yes) if out.isatty() else None
    notifier: TerminalNotifier = live or CompactNotifier(out, apps=apps)
    reason = "checkout returns 500 after the v1.5.0 deploy"
    carol = terminal_actor(apps, "U0CAROL")
    request = OpenRequest("myapp", Version("v1.4.2"), reason, carol)
    console = Console(out=out)
    ctrl_c = CtrlC(console)
    steps, queue = build_terminal_runner(apps, store, notifier, root / "workspace", ctrl_c)
    console.install()
    try:
        if yes:
            # The demo stands in for alice too: her approvals are the four-eyes of production.
            alice = terminal_actor(apps, "U0ALICE")
            chooser: Chooser = _as_approver(auto_chooser(apps, carol), alice)
        else:
            chooser = Prompter(console, apps, carol, People.from_apps_file(people))
        driver = Driver(steps, queue, store, chooser, out, ctrl_c)
        incident = await driver.open(request)
    finally:
        console.uninstall()
        if live is not None:
            live.stop()
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
    stopped = False
    try:
        incident = asyncio.run(_run(root, hosts, origin, yes, out))
        print(wrapped(f"\nOutcome: {incident.outcome or incident.status.value}"), file=out)
        for name, now in _serving(hosts).items():
            print(wrapped(f"  {name}: {now}"), file=out)
        if keep:
            _kept(root, hosts, origin, out)
        else:
            _stop(hosts)
            stopped = True
            shutil.rmtree(root, ignore_errors=True)
            print("The sample app is stopped (--keep leaves it running). Removed:", file=out)
            print(wrapped(f"  {root}"), file=out)
        return 0 if incident.status.value == "completed" else 1
    finally:
        if not keep and not stopped:
            _stop(hosts)
            shutil.rmtree(root, ignore_errors=True)


def _stop(hosts: dict[str, tuple[Path, int]]) -> None:
    for workdir, _ in hosts.values():
        with contextlib.suppress(RuntimeError):
            stop_app(workdir)


def _kept(root: Path, hosts: dict[str, tuple[Path, int]], origin: Path, out: TextIO) -> None:
    apps_file = write_kept_apps_file(root, hosts, origin)
    print("Still running (--keep):", file=out)
    for name, (_, port) in hosts.items():
        print(wrapped(f"  {name}: http://127.0.0.1:{port}/healthz"), file=out)
    print(wrapped(f"Its apps file (staging, so --yes may answer; local hosts, no SSH): "
                  f"{apps_file}"), file=out)  # fmt: skip
    print(wrapped("Go on with the real CLI, in one shell (Redis keeps the incidents: REDIS_URL, "
                  "default redis://localhost:6379/0; the second line starts one if none "
                  "answers):"), file=out)  # fmt: skip
    for command in next_commands(root, apps_file):
        print(f"  $ {command}", file=out)  # whole, to copy, whatever the width
    print("Stop it and remove its files with:", file=out)
    for workdir, _ in hosts.values():
        print(f"  {shlex.quote(str(app_dir(workdir) / 'run.sh'))} stop", file=out)
    print(f"  rm -rf {shlex.quote(str(root))}", file=out)


def next_commands(root: Path, apps_file: Path) -> list[str]:
    """The exact commands that go on from the kept sample, in one shell, as printed."""
    reason = shlex.quote("checkout returns 500 after the v1.5.0 deploy")
    rewind = _rewind()
    return [
        f"export REWIND_CONFIG={shlex.quote(str(apps_file))} "
        f"REWIND_WORKSPACE={shlex.quote(str(root / 'workspace'))}",
        START_REDIS,
        f"{rewind} check",
        f"{rewind} rollback myapp v1.4.2 --reason {reason} --yes",
    ]


def _rewind() -> str:
    """`rewind` when it is this installation's; else this Python's `-m bot` (a checkout)."""
    found = shutil.which("rewind")
    if found and Path(found).parent == Path(sys.executable).parent:
        return "rewind"
    return f"{shlex.quote(sys.executable)} -m bot"


def write_kept_apps_file(root: Path, hosts: dict[str, tuple[Path, int]], origin: Path) -> Path:
    """The demo's app as an apps file the real CLI runs. Its hosts are directories on this
    machine (`ssh.transport: local`, written here explicitly, never a default); it is staging,
    so `--yes` may answer; it tells no channel (nobody is there to read it)."""
    import yaml

    app = demo_config(root, hosts, origin)
    app["environment"] = "staging"
    app["approvers"] = ["U0ALICE", "U0CAROL"]
    for key in ("notify", "mention"):
        app.pop(key)
    data = {
        "apps": {"myapp": app},
        "incidents": {"dir": str(root / "incidents")},
        "people": {"carol": "U0CAROL", "alice": "U0ALICE"},
    }
    path = root / "apps.yaml"
    header = (
        '# Written by `rewind demo --keep`: the sample app myapp, on two local "hosts"\n'
        "# (directories on this machine: ssh.transport local, no SSH). To try break-glass and\n"
        "# four-eyes, set environment: production (then --yes is refused).\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
    return path
