"""What the benchmarks stand on: real sshd hosts, a private Redis, the bot's processes, figures.

Everything listens on 127.0.0.1 and is torn down on exit. The SSH hosts are the test suite's
(`tests/fixtures_hosts.py`: a real OpenSSH `sshd` per host in its own mount namespace, the
sample app checked out and serving), started here without pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncssh

from bot.sample.build import SampleRepo, build_sample_origin
from bot.sample.hosts import provision_host_checkout
from tests.fixtures_hosts import (
    APP_NAME,
    PG_ADMIN_URL,
    WORKDIR_ROOT,
    SshEnv,
    SshKeys,
    TestHost,
    _start_sshd,
    _stop_host,
    free_port,
)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret"


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
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp),
         "--save", "", "--appendonly", "yes", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()
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


def make_keys(tmp: Path) -> SshKeys:
    d = tmp / "ssh_keys"
    d.mkdir(mode=0o700)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="rewind-bench")
    client_key = d / "id_ed25519"
    client_key.write_bytes(key.export_private_key("openssh"))
    client_key.chmod(0o600)
    public = key.export_public_key("openssh").decode().strip()
    return SshKeys(dir=d, client_key=client_key, client_public=public)


@dataclass
class Lab:
    """N sshd hosts with the sample app (v1.5.0, failing), and their origin."""

    tmp: Path
    env: SshEnv
    roots: list[Path] = field(default_factory=list)

    @property
    def hosts(self) -> list[TestHost]:
        return self.env.hosts

    def ssh_argv(self, host: TestHost) -> list[str]:
        """Plain OpenSSH to `host`: host key checked, no connection sharing."""
        return [
            "ssh", "-p", str(host.port), "-i", str(self.env.client_key),
            "-o", f"UserKnownHostsFile={self.env.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
            "-o", "LogLevel=ERROR", f"{self.env.user}@{host.address}",
        ]  # fmt: skip

    def reset(self, ref: str = "v1.5.0", *, db_head: bool = False) -> None:
        """Every host back on `ref` (the bad version, app restarted), untimed."""
        script = f"git checkout --quiet --force {shlex.quote(ref)} && ./run.sh restart >/dev/null"

        def one(host: TestHost) -> None:
            host.run(script, timeout=120)

        with _threads(len(self.hosts)) as pool:
            list(pool.map(one, self.hosts))
        if db_head:
            self.hosts[0].run("alembic -c alembic.ini upgrade head >/dev/null 2>&1", timeout=120)


@contextlib.contextmanager
def _threads(n: int) -> Iterator[Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(n, 16))) as pool:
        yield pool


@contextlib.contextmanager
def lab(
    count: int,
    *,
    db_url: str | None = None,
    repo: SampleRepo | None = None,
    tmp: Path | None = None,
) -> Iterator[Lab]:
    """`count` hosts, each a real sshd in its own mount namespace, the app started on each."""
    own_tmp = tmp is None
    base = tmp or Path(tempfile.mkdtemp(prefix="rewind-bench-"))
    keys = make_keys(base) if not (base / "ssh_keys").exists() else _keys_in(base)
    repo = repo or build_sample_origin(base / f"origin-{uuid.uuid4().hex[:6]}")
    uid = uuid.uuid4().hex[:10]
    root = WORKDIR_ROOT / uid
    workdir = str(root / APP_NAME)
    hdir = base / f"hosts-{uid}"
    hdir.mkdir()
    hosts: list[TestHost] = []
    try:
        for i in range(count):
            host = TestHost(
                name=f"web{i + 1}", address="127.0.0.1", port=free_port(), workdir=workdir,
                real_dir=hdir / f"web{i + 1}" / APP_NAME, app_port=free_port(),
            )  # fmt: skip
            provision_host_checkout(
                repo.origin, host.real_dir, ref=repo.bad, app_port=host.app_port, db_url=db_url
            )
            hosts.append(host)
            _start_sshd(host, keys, hdir)
        known = hdir / "known_hosts"
        known.write_text("".join(f"[{h.address}]:{h.port} {h.host_key_line}\n" for h in hosts))
        env = SshEnv(hosts=hosts, known_hosts=known, client_key=keys.client_key,
                     workdir=workdir, repo=repo, db_url=db_url)  # fmt: skip
        if db_url:
            hosts[0].run("alembic -c alembic.ini upgrade head", timeout=120)
        with _threads(count) as pool:
            list(pool.map(lambda h: h.run("./run.sh start", timeout=120), hosts))
        yield Lab(base, env, [root])
    finally:
        with _threads(len(hosts)) as pool:
            list(pool.map(_stop_host, hosts))
        shutil.rmtree(root, ignore_errors=True)
        if own_tmp:
            shutil.rmtree(base, ignore_errors=True)


def _keys_in(base: Path) -> SshKeys:
    d = base / "ssh_keys"
    key = d / "id_ed25519"
    public = asyncssh.read_private_key(str(key)).export_public_key("openssh").decode().strip()
    return SshKeys(dir=d, client_key=key, client_public=public)


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = f"rewind_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
        for p in procs:
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.popen.wait(15)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait(5)


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


async def wait_http(url: str, timeout: float = 60, procs: Sequence[Proc] = ()) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            for p in procs:
                if p.popen.poll() is not None:
                    raise RuntimeError(f"{p.name} exited: {p.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} never answered")
            await asyncio.sleep(0.1)


PY = sys.executable
