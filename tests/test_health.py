"""Health probes against a real HTTP server on port 0."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.checks import health
from bot.checks.health import HealthCheck
from bot.workflow.errors import ConfigError
from tests.fakes import make_apps


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    calls = {"warming": 0}

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def bad(_: web.Request) -> web.Response:
        return web.Response(status=500, text="error: pool exhausted")

    async def api(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "db": {"up": True, "lag": 0}, "version": "1"})

    async def warming(_: web.Request) -> web.Response:
        calls["warming"] += 1
        if calls["warming"] < 3:
            return web.Response(status=503, text="starting")
        return web.Response(text="ok")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    app = web.Application()
    app.add_routes(
        [
            web.get("/ok", ok),
            web.get("/bad", bad),
            web.get("/api", api),
            web.get("/warming", warming),
            web.get("/slow", slow),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", calls
    finally:
        await runner.cleanup()


def check(url: str, **kw: object) -> HealthCheck:
    return HealthCheck.model_validate({"url": url, **kw})


async def test_status_and_json_subset(server: tuple[str, dict[str, int]]) -> None:
    base, _ = server
    async with aiohttp.ClientSession() as s:
        good = await health.probe(s, check(base, status=200), f"{base}/ok")
        bad = await health.probe(s, check(base, status=200), f"{base}/bad")
        api = await health.probe(
            s, check(base, json={"status": "ok", "db": {"up": True}}), f"{base}/api"
        )
        wrong = await health.probe(s, check(base, json={"db": {"up": False}}), f"{base}/api")
        not_json = await health.probe(s, check(base, json={"status": "ok"}), f"{base}/ok")
        default = await health.probe(s, check(base), f"{base}/bad")
    assert good.ok and good.status == 200 and good.latency_ms > 0 and good.body_excerpt == "ok"
    assert not bad.ok and bad.status == 500 and bad.error == "expected 200"
    assert "pool exhausted" in bad.body_excerpt
    assert api.ok
    assert not wrong.ok and "does not contain" in wrong.error
    assert not not_json.ok and not_json.error == "body is not JSON"
    assert not default.ok and "2xx" in default.error  # no status given: any 2xx


async def test_no_answer_and_timeout(server: tuple[str, dict[str, int]]) -> None:
    base, _ = server
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # bound, not listening: connection refused
        async with aiohttp.ClientSession() as s:
            refused = await health.probe(s, check(base), f"http://127.0.0.1:{closed}/")
            slow = await health.probe(s, check(base, timeout=0.3), f"{base}/slow")
    assert not refused.ok and refused.status is None and refused.error
    assert "no answer" in refused.describe()
    assert not slow.ok and slow.error == "no answer within 0.3s"
    assert 250 < slow.latency_ms < 1500


async def test_wait_healthy_retries_until_good_or_deadline(
    server: tuple[str, dict[str, int]],
) -> None:
    base, calls = server
    todo = [
        health.Target(check(base, status=200), f"{base}/warming"),
        health.Target(check(base, status=200), f"{base}/ok"),
    ]
    probes = await health.wait_healthy(todo, within=5, every=0.05)
    assert [p.ok for p in probes] == [True, True]
    assert calls["warming"] == 3

    started = time.monotonic()
    probes = await health.wait_healthy(
        [health.Target(check(base, status=200), f"{base}/bad")], within=0.5, every=0.1
    )
    assert not probes[0].ok and probes[0].status == 500
    assert time.monotonic() - started < 5  # gave up after `within`, not after the default wait


def test_targets_expand_host_vars_once_per_host() -> None:
    apps = make_apps(
        {
            "repo": "/srv/repo",
            "incident_channel": "C0",
            "approvers": ["U0ALICE", "U0BOB"],
            "ssh": {"transport": "local"},
            "hosts": [
                {"name": "web1", "address": "127.0.0.1", "vars": {"app_port": "8001"}},
                {"name": "web2", "address": "10.0.0.2", "vars": {"app_port": "8002"}},
            ],
            "deploy": {"strategy": "systemd", "workdir": "/srv/app", "service": "myapp"},
            "health": [
                {"url": "http://{address}:{app_port}/healthz", "status": 200},
                {"url": "https://myapp.example.com/api/health", "json": {"status": "ok"}},
            ],
        }
    )
    got = [(t.url, t.host) for t in health.targets(apps.apps["myapp"])]
    assert got == [
        ("http://127.0.0.1:8001/healthz", "web1"),
        ("http://10.0.0.2:8002/healthz", "web2"),
        ("https://myapp.example.com/api/health", None),
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://myapp.example.com/health", r"health\[0\]\.url: .*not an http\(s\) URL"),
        ("file:///etc/passwd", r"health\[0\]\.url: .*not an http\(s\) URL"),
        ("http://127.0.0.1:{db_port}/health", r"health\[0\]\.url: unknown placeholder \{db_port\}"),
    ],
)
def test_bad_urls_refused_when_the_apps_file_loads(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_apps(
            {
                "repo": "/srv/repo",
                "incident_channel": "C0",
                "ssh": {"transport": "local"},
                "approvers": ["U0ALICE", "U0BOB"],
                "hosts": [{"name": "web1", "address": "127.0.0.1"}],
                "deploy": {"strategy": "systemd", "workdir": "/srv/app", "service": "myapp"},
                "health": [{"url": url}],
            }
        )


def test_percentile_and_json_contains() -> None:
    assert health.percentile([], 50) is None
    assert health.percentile([5.0], 95) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert health.percentile(values, 50) == pytest.approx(50.5)
    assert health.percentile(values, 95) == pytest.approx(95.05)
    assert health.percentile([3.0, 1.0, 2.0], 0) == 1.0
    assert health.percentile([3.0, 1.0, 2.0], 100) == 3.0
    assert health.json_contains({"a": 1, "b": {"c": [1, 2]}}, {"b": {"c": [1, 2]}})
    assert not health.json_contains({"a": 1}, {"a": "1"})
    assert not health.json_contains([{"a": 1}], {"a": 1})
