"""Redis servers of the tests' own: real `redis-server` processes on free ports, in temp dirs.

Tests touch only what they start: never a server on 6379 or any other the session did not start.
`session_redis_url()` is the test session's own server (one per pytest-xdist worker, started on
first use, stopped at the end of the session); the others are stopped, restarted and killed on
purpose by the tests that start them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.processes import restartable_port


class RedisServer:
    """One redis-server; `appendonly` as an operator would run it (the README says why)."""

    def __init__(
        self, root: Path, *, appendonly: bool = True, args: tuple[str, ...] = (), name: str = ""
    ) -> None:
        self.port = restartable_port()
        self.dir = root / (name or f"redis-{self.port}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)

    def start(self) -> RedisServer:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
               "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"),
               "--appendonly", "yes" if self.appendonly else "no", "--save", "",
               "--daemonize", "no", *self.args]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            with contextlib.suppress(redis.RedisError), self.client() as c:
                if c.ping() and c.info("persistence").get("loading") == 0:
                    return
            assert time.monotonic() < deadline, f"redis on {self.port} never answered"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown (the AOF is flushed); SIGKILL: a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text()[-3000:] if path.exists() else ""


_session: list[RedisServer] = []


def session_redis_url(db: int = 9) -> str:
    """This test process's own Redis (started on first use, no persistence, in a temp dir).

    The tests flush its databases freely: nobody else's data is in it. No environment variable
    points the tests at another server (REWIND_TEST_REDIS_URL is ignored): a server they did not
    start may hold someone's data.
    """
    if not _session:
        root = Path(tempfile.mkdtemp(prefix="rewind-test-redis-"))
        server = RedisServer(root, appendonly=False, name="session")
        _session.append(server.start())
        atexit.register(stop_session_redis)  # also when used outside pytest (bench/)
    return _session[0].url(db)


def stop_session_redis() -> None:
    """Stops the session's Redis and removes its directory (nothing when it never started)."""
    while _session:
        server = _session.pop()
        server.stop()
        shutil.rmtree(server.dir.parent, ignore_errors=True)


class SentinelSet:
    """A primary, a replica and three sentinels, tuned to fail over in a few seconds."""

    SERVICE = "mymaster"

    def __init__(self, root: Path) -> None:
        self.primary = RedisServer(root, name="primary")
        self.replica = RedisServer(
            root, name="replica", args=("--replicaof", "127.0.0.1", str(self.primary.port))
        )
        self.sentinels: list[tuple[int, Path, subprocess.Popen[bytes] | None]] = []
        self.root = root

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port, _, _ in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/{db}"

    def start(self) -> SentinelSet:
        self.primary.start()
        self.replica.start()
        self._wait(lambda: self.replica.client().info("replication").get("master_link_status")
                   == "up", "the replica to sync")  # fmt: skip
        for n in range(3):
            port = restartable_port()
            conf = self.root / f"sentinel-{n}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.root}\n"
                f"logfile {self.root / f'sentinel-{n}.log'}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                # A few seconds to notice and fail over, instead of the 30 s / 3 min defaults.
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                f"sentinel failover-timeout {self.SERVICE} 5000\n"
                f"sentinel parallel-syncs {self.SERVICE} 1\n"
            )
            cmd = ["redis-server", str(conf), "--sentinel"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            self.sentinels.append((port, conf, proc))
        for port, _, _ in self.sentinels:
            self._wait(lambda p=port: self._sentinel_sees_replica(p), f"sentinel {port}")  # type: ignore[misc]
        return self

    def _sentinel_sees_replica(self, port: int) -> bool:
        with redis.Redis(port=port, socket_timeout=2, decode_responses=True) as s:
            master = s.sentinel_master(self.SERVICE)
            return int(master["num-slaves"]) >= 1 and int(master["num-other-sentinels"]) >= 2

    def master_port(self) -> int:
        port = self.sentinels[0][0]
        with redis.Redis(port=port, socket_timeout=2, decode_responses=True) as s:
            _, master = s.sentinel_get_master_addr_by_name(self.SERVICE)
            return int(master)

    @staticmethod
    def _wait(check: object, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(redis.RedisError, ValueError):
                if check():  # type: ignore[operator]
                    return
            assert time.monotonic() < deadline, f"waited too long for {what}"
            time.sleep(0.1)

    def wait_failover(self) -> None:
        self._wait(lambda: self.master_port() == self.replica.port, "the failover", timeout=60)

    def stop(self) -> None:
        for _, _, proc in self.sentinels:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.replica.stop()
        self.primary.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    group = SentinelSet(tmp_path / "sentinel")
    group.root.mkdir(parents=True, exist_ok=True)
    try:
        yield group.start()
    finally:
        group.stop()


@pytest.fixture(scope="session", autouse=True)
def _subprocesses_use_the_session_redis() -> Iterator[None]:
    """A `python -m bot` started without REDIS_URL would use the default, localhost:6379 (maybe
    someone's data): in the tests, it lands on the session's own Redis instead."""
    old = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = session_redis_url()
    yield
    if old is None:
        os.environ.pop("REDIS_URL", None)
    else:
        os.environ["REDIS_URL"] = old


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Here, not at unconfigure: a pytest-xdist worker reports itself finished after this hook,
    # and may then be ended before a later hook could stop the server.
    stop_session_redis()
