"""Operating Rewind on Redis for years: persistence known, bounded growth, export, Sentinel URLs.

Each test that stops or reconfigures Redis has its own `redis-server` (tests/redis_servers.py).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bot.cli.check import run_check
from bot.config.settings import Settings
from bot.store.connection import RedisUrlError, connect, parse_url, persistence_warning
from bot.store.redis_store import RedisStore
from bot.workflow.machine import new_steps
from bot.workflow.model import Incident, Status
from tests.harness import settings_env, write_apps
from tests.processes import Serve
from tests.redis_servers import RedisServer
from tests.slack_fake import SlackFake


def local_app(tmp_path: Path) -> dict[str, Any]:
    """An app on this machine (no SSH): enough for `check` and the web process to start."""
    return {
        "repo": str(tmp_path), "incident_channel": "C0INCIDENT", "operators": ["U0CAROL"],
        "environment": "staging", "ssh": {"transport": "local"},
        "hosts": [{"name": "w1", "address": "127.0.0.1"}],
        "deploy": {"strategy": "commands", "workdir": str(tmp_path), "commands": {
            "fetch": "true", "install": "true", "restart": "true", "status": "true",
            "version": "true"}},
    }  # fmt: skip


def incident(incident_id: str = "0ps0k1", **kw: Any) -> Incident:
    return Incident(id=incident_id, app="myapp", environment="staging", requested_version="v1",
                    reason="x", requested_by="U0CAROL", steps=new_steps(), **kw)  # fmt: skip


# ---- persistence is known -------------------------------------------------------------------


async def test_persistence_settings_are_read_and_said(tmp_path: Path, slack: SlackFake) -> None:
    server = RedisServer(tmp_path, appendonly=False).start()
    client = connect(server.url())
    try:
        nothing = await persistence_warning(client)
        assert nothing and "persists nothing" in nothing and "appendonly yes" in nothing
        await client.config_set("save", "900 1")
        snapshots = await persistence_warning(client)
        assert snapshots and "snapshots only" in snapshots
        await client.config_set("appendonly", "yes")
        assert await persistence_warning(client) is None

        await client.config_set("appendonly", "no")
        await client.config_set("save", "")
        config = tmp_path / "apps.yaml"
        config.write_text(yaml.safe_dump({"apps": {"myapp": local_app(tmp_path)}}))
        settings = Settings.model_validate(
            {"REWIND_CONFIG": str(config), "REDIS_URL": server.url(),
             "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.api_url}
        )  # fmt: skip
        out = io.StringIO()
        assert await run_check(settings, connect=True, out=out) == 0  # a warning, not a failure
        warnings = [line for line in out.getvalue().splitlines() if line.startswith("⚠")]
        assert len(warnings) == 1 and "persists nothing" in warnings[0], out.getvalue()
        assert f"127.0.0.1:{server.port}" in warnings[0]
    finally:
        await client.aclose()
        server.stop()

    locked = RedisServer(tmp_path, appendonly=True, args=("--rename-command", "CONFIG", ""))
    locked.start()
    client = connect(locked.url())
    try:
        cannot = await persistence_warning(client)
        assert cannot and "cannot read" in cannot and "appendonly yes" in cannot
    finally:
        await client.aclose()
        locked.stop()


async def test_serve_warns_at_start_up_when_redis_persists_nothing(
    tmp_path: Path, slack: SlackFake, serve_factory: Callable[..., Serve]
) -> None:
    server = RedisServer(tmp_path, appendonly=False).start()
    config = write_apps(tmp_path / "apps.yaml", {"myapp": local_app(tmp_path)}, tmp_path / "inc")
    serve = serve_factory(settings_env(slack, server.url(), config, tmp_path / "ws"))
    log_path = tmp_path / "serve-1.log"
    try:
        await serve.start()
        await _wait_for_line(log_path, "persists nothing")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{serve.url}/healthz") as resp,
        ):
            assert resp.status == 200  # a warning: serve still serves
    finally:
        serve.close()
        server.stop()
    warned = [line for line in log_path.read_text().splitlines() if "persists nothing" in line]
    assert len(warned) == 1 and "WARNING" in warned[0]


async def _wait_for_line(path: Path, text: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (path.exists() and text in path.read_text()):
        assert asyncio.get_running_loop().time() < deadline, path.read_text()[-2000:]
        await asyncio.sleep(0.1)


# ---- bounded growth -------------------------------------------------------------------------


async def test_closed_incidents_expire_after_the_retention_open_ones_stay(
    redis_url: str, tmp_path: Path
) -> None:
    store = RedisStore(connect(redis_url), retention=3600)
    try:
        kept, closed = incident("0pen01"), incident("c10sed")
        await store.create(kept)
        await store.create(closed)
        await store.audit(closed.id, "U0CAROL", "opened")
        assert await store.expires_in(closed.id) is None  # open: kept, however long it takes
        assert await store.r.ttl(f"rewind:audit:{closed.id}") == -1
        closed.status = Status.COMPLETED
        assert await store.save(closed)
        assert 3590 < (await store.expires_in(closed.id) or 0) <= 3600
        await store.audit(closed.id, "rewind", "report written")  # after the close: same TTL
        assert 3590 < await store.r.ttl(f"rewind:audit:{closed.id}") <= 3600
        assert await store.expires_in(kept.id) is None
        assert await store.r.ttl(f"rewind:incident:{kept.id}") == -1

        # Really gone once the retention has passed; the open incident is untouched.
        short = RedisStore(store.r, retention=1)
        brief = incident("br1ef0")
        await short.create(brief)
        await short.audit(brief.id, "U0CAROL", "opened")
        brief.status = Status.CANCELLED
        assert await short.save(brief)
        deadline = asyncio.get_running_loop().time() + 30
        while await store.load(brief.id) is not None:
            assert asyncio.get_running_loop().time() < deadline, "never expired"
            await asyncio.sleep(0.2)
        assert await store.timeline(brief.id) == []
        assert await store.load(kept.id) is not None
        assert [i.id for i in await store.open_incidents()] == [kept.id]
        assert brief.id not in [i.id for i in await store.recent_incidents()]
        assert await store.r.ttl("rewind:seen:x") == -2
        assert await store.first_time("x") and await store.r.ttl("rewind:seen:x") > 0
    finally:
        await store.r.aclose()


def test_retention_setting_takes_days() -> None:
    assert Settings.model_validate({}).retention == 400 * 86400
    assert Settings.model_validate({"REWIND_RETENTION": "30d"}).retention == 30 * 86400
    with pytest.raises(ValueError, match="not a duration"):
        Settings.model_validate({"REWIND_RETENTION": "forever"})


async def test_export_prints_the_record_and_timeline_as_json(
    redis_url: str, tmp_path: Path
) -> None:
    store = RedisStore(connect(redis_url))
    try:
        done = incident("exp0rt", status=Status.COMPLETED, outcome="Rolled back to v1")
        await store.create(done)
        await store.audit(done.id, "U0CAROL", "opened", "myapp v1")
        await store.audit(done.id, "U0ALICE", "answered approve", "running")
    finally:
        await store.r.aclose()
    env = {**os.environ, "REDIS_URL": redis_url}
    result = subprocess.run([sys.executable, "-m", "bot", "export", "exp0rt"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["incident"]["id"] == "exp0rt"
    assert record["incident"]["outcome"] == "Rolled back to v1"
    assert [e["who"] for e in record["timeline"]] == ["U0CAROL", "U0ALICE"]
    assert record["expires_in_seconds"] > 399 * 86400
    missing = subprocess.run([sys.executable, "-m", "bot", "export", "n0th1n"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert missing.returncode == 1 and "no incident `n0th1n`" in missing.stderr


# ---- Sentinel URLs --------------------------------------------------------------------------


def test_sentinel_urls_are_parsed_and_never_shown_with_a_password() -> None:
    target = parse_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/2")
    assert target.sentinel and target.service == "mymaster" and target.db == 2
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert target.password == "s3cret" and "s3cret" not in target.redacted()
    assert not parse_url("redis://localhost:6379/0").sentinel
    assert parse_url("redis+sentinel://h:26379/svc").db == 0
    for bad in (
        "redis+sentinel://h:26379/",
        "redis+sentinel://h/svc/0",
        "redis+sentinel://h:1/s/x",
    ):
        with pytest.raises(RedisUrlError, match="redis\\+sentinel://"):
            parse_url(bad)


def test_a_bad_redis_url_stops_the_worker_with_a_plain_message(tmp_path: Path) -> None:
    config = write_apps(tmp_path / "apps.yaml", {"myapp": local_app(tmp_path)}, tmp_path / "inc")
    env = {**os.environ, "REWIND_CONFIG": str(config), "REDIS_URL": "redis+sentinel://h/x/0",
           "SLACK_BOT_TOKEN": "xoxb-test"}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "bot", "worker"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 1
    assert "REDIS_URL" in result.stderr and "Traceback" not in result.stderr
