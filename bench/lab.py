"""What the benchmarks stand on: real sshd hosts, a private Redis, the bot's processes, figures.

Everything listens on 127.0.0.1 and is torn down on exit. The SSH hosts are the test suite's
(`tests/fixtures_hosts.py`: a real OpenSSH `sshd` per host in its own mount namespace, the
sample app checked out and serving), started here without pytest.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures_hosts import (
    SshEnv,
    TestHost,
    fresh_database,
    on_every_host,
    ssh_env_factory,
    ssh_keys_in,
)
from tests.processes import end, free_port
from tests.redis_servers import RedisServer

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret"
# The apps' install: pip resolving the app's requirements, offline (no index, no version check),
# so that the benches reach nothing beyond 127.0.0.1.
INSTALL = "pip install -q --no-index --disable-pip-version-check -r requirements.txt"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GB"
    ssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    load = os.getloadavg()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "openssh": ssh.split(",")[0],
        "redis": (redis.split()[2].removeprefix("v=") if redis else "?"),
        "load": f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min, at start)",
    }


# ---- a private Redis --------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own (own port, own dir): nothing else's commands in its stats."""
    tmp = Path(tempfile.mkdtemp(prefix="rewind-bench-redis-"))
    server = RedisServer(tmp)
    try:
        yield server.start().url()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def redis_commands(url: str) -> int:
    """Commands the Redis server processed so far (its INFO stats)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats: Any = client.info("stats")
        return int(stats["total_commands_processed"])
    finally:
        client.close()


# ---- SSH hosts --------------------------------------------------------------------------------


@dataclass
class Lab:
    """N sshd hosts with the sample app (v1.5.0, failing), and their origin."""

    tmp: Path
    env: SshEnv

    @property
    def hosts(self) -> list[TestHost]:
        return self.env.hosts

    def ssh_argv(self, host: TestHost, master: Path | None = None) -> list[str]:
        """Plain OpenSSH to `host`, host key checked: no connection sharing, or with `master`
        (a directory) one connection per host shared by every ssh to it (ControlMaster auto,
        kept 120 s at most; `end_masters` closes them)."""
        sharing = ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        if master is not None:
            sharing = ["-o", "ControlMaster=auto", "-o", f"ControlPath={master}/%C",
                       "-o", "ControlPersist=120"]  # fmt: skip
        return [
            "ssh", "-p", str(host.port), "-i", str(self.env.client_key),
            "-o", f"UserKnownHostsFile={self.env.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", *sharing,
            "-o", "LogLevel=ERROR", f"{self.env.user}@{host.address}",
        ]  # fmt: skip

    def end_masters(self, master: Path) -> None:
        """Close the shared connections `ssh_argv(..., master)` left open (`ssh -O exit`)."""
        for host in self.hosts:
            argv = self.ssh_argv(host, master)
            subprocess.run([*argv[:-1], "-O", "exit", argv[-1]], capture_output=True, timeout=30)

    def reset(self, ref: str = "v1.5.0", *, db_head: bool = False) -> None:
        """Every host back on `ref` (the bad version, app restarted), untimed."""
        script = f"git checkout --quiet --force {shlex.quote(ref)} && ./run.sh restart >/dev/null"
        on_every_host(self.hosts, lambda host: host.run(script, timeout=120))
        if db_head:
            self.hosts[0].run("alembic -c alembic.ini upgrade head >/dev/null 2>&1", timeout=120)


@contextlib.contextmanager
def lab(
    count: int, *, db_url: str | None = None, ref: str | None = None, releases: int | None = None
) -> Iterator[Lab]:
    """`count` hosts, each a real sshd in its own mount namespace, the app started on each
    (the test suite's hosts); with `db_url`, its database migrated to v1.5.0's head; with
    `releases`, in the releases layout (`ref` kept and current)."""
    base = Path(tempfile.mkdtemp(prefix="rewind-bench-"))
    try:
        with ssh_env_factory(ssh_keys_in(base / "ssh_keys"), base) as make:
            env = make(count, db_url=db_url, migrate=db_url is not None, ref=ref, releases=releases)
            yield Lab(base, env)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    with fresh_database("rewind_bench") as url:
        yield url


# ---- the bot's processes ------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def rss_mb(self) -> float:
        """Peak resident memory so far (VmHWM), MB."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.contextmanager
def processes(
    commands: Sequence[tuple[str, list[str]]], env: dict[str, str], logs: Path
) -> Iterator[list[Proc]]:
    """Start each (name, argv) with `env`; stop them all (SIGTERM, then SIGKILL) at the end.

    Each gets a free `METRICS_PORT` of its own (workers serve /metrics there)."""
    procs: list[Proc] = []
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for name, argv in commands:
            log = logs / f"{name}.log"
            own = {**os.environ, **env, "METRICS_PORT": str(free_port())}
            with log.open("wb") as out:
                popen = subprocess.Popen(
                    argv, env=own, cwd=ROOT, stdout=out,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )  # fmt: skip
            procs.append(Proc(name, popen, log))
        yield procs
    finally:
        end((p.popen for p in procs), 15)


def bot_env(
    api_url: str, redis_url: str, config: Path, workspace: Path, port: int
) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": api_url,
        "REDIS_URL": redis_url,
        "REWIND_CONFIG": str(config),
        "REWIND_WORKSPACE": str(workspace),
        "REWIND_QUEUE": f"rewind-bench-{uuid.uuid4().hex[:6]}",
        "PORT": str(port),
        "PYTHONPATH": str(ROOT),
    }


def running(procs: Sequence[Proc]) -> Callable[[], None]:
    """A `wait_http` check: raises, with its log, once one of `procs` has exited."""

    def check() -> None:
        for p in procs:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited: {p.log.read_text()[-2000:]}")

    return check


PY = sys.executable
