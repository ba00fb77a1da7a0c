"""Tests touch only what they start: the test machinery run beside a Redis holding someone's data.

A Redis this test starts stands for an engineer's own server: keys are planted in it, and every
variable that once pointed the tests at a server (REDIS_URL, REWIND_TEST_REDIS_URL) points at
it. A pytest run of the suite's machinery (conftest, its fixtures, pytest-xdist) must leave it
exactly as it was: not flushed, not written, not even connected to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from tests.redis_servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent
PLANTED = "someones:data"


def test_redis_url_is_a_server_the_session_started(redis_url: str) -> None:
    """Run by itself as well as inside the planted run below: the fixture's server is the
    session's own, and a bot started without REDIS_URL lands there too."""
    from tests.redis_servers import session_redis_url

    assert urlsplit(redis_url).port == urlsplit(session_redis_url()).port
    assert os.environ["REDIS_URL"] == session_redis_url()
    with redis.Redis.from_url(redis_url) as client:
        client.set("written-by-a-test", "1")  # the fixture flushes it afterwards
        assert client.get("written-by-a-test") == b"1"


@pytest.fixture
def someones_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "someones", appendonly=False).start()
    yield server
    server.stop()


def keyspace(client: redis.Redis) -> dict[int, dict[str, str]]:
    """Every key of every database, with its value."""
    found: dict[int, dict[str, str]] = {}
    for db in range(16):
        client.select(db)
        found[db] = {k: client.get(k) or "" for k in client.keys("*")}
    client.select(0)
    return found


def test_the_test_run_leaves_a_server_it_did_not_start_untouched(
    someones_redis: RedisServer,
) -> None:
    client = someones_redis.client()
    for db in (0, 8, 9, 10):  # the default, the old bench's, and the old tests' databases
        client.select(db)
        client.set(PLANTED, f"precious-{db}")
    client.select(0)
    before = keyspace(client)
    connections = int(client.info("stats")["total_connections_received"])

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": someones_redis.url(0),
        "REWIND_TEST_REDIS_URL": someones_redis.url(9),
    }
    env.pop("PYTEST_XDIST_WORKER", None)
    test = f"{Path(__file__).relative_to(ROOT)}::test_redis_url_is_a_server_the_session_started"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:benchmark",
         "-n", "1", test],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr

    assert keyspace(client) == before
    assert before[9] == {PLANTED: "precious-9"}
    # Not even connected to: the only connection it ever had is this test's own.
    assert int(client.info("stats")["total_connections_received"]) == connections
    client.close()
