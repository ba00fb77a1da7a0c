"""Helpers for the deploy-watch tests and bench: a health endpoint the test controls, apps on
`ssh.transport: local`, the bot with its API token, deploys reported over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.watch.model import Watch
from tests.harness import Bot, running_bot, settings_env, write_apps
from tests.slack_fake import SlackFake

TOKEN = "watch-test-token"


class Upstream:
    """A health URL on 127.0.0.1 whose n-th answer (from 1) is a 500 when `fail(n)` says so."""

    def __init__(self) -> None:
        self.fail: Callable[[int], bool] = lambda n: False
        self.count = 0
        self.failures: list[float] = []  # time.time() of each 500 sent
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _health(self, request: web.Request) -> web.Response:
        self.count += 1
        if self.fail(self.count):
            self.failures.append(time.time())
            return web.Response(status=500, text="error: pool exhausted\n")
        return web.Response(text="ok\n")

    async def __aenter__(self) -> Upstream:
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/healthz"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def local_app(root: Path, url: str, **extra: Any) -> dict[str, Any]:
    """One host on this machine (`ssh.transport: local`), its logs in `root/web1/app.log`."""
    workdir = root / "web1"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "app.log").touch()
    return {
        "environment": "staging",
        "repo": str(root / "origin.git"),
        "incident_channel": "C0INCIDENT",
        "operators": ["U0CAROL"],
        "approvers": ["U0ALICE"],
        "ssh": {"transport": "local"},
        "hosts": [{"name": "web1", "address": "127.0.0.1"}],
        "deploy": {
            "strategy": "commands",
            "workdir": str(workdir),
            "commands": {
                "fetch": "true",
                "install": "true",
                "restart": "true",
                "status": "true",
                "version": "echo v0",
                "logs": "tail -n 200 app.log",
            },
        },
        "health": [{"url": url, "status": 200, "timeout": 2}],
        "watch": {"duration": "3s", "interval": "0.25s"},
        **extra,
    }


@contextlib.asynccontextmanager
async def watch_bot(
    slack: SlackFake,
    redis_url: str,
    root: Path,
    apps: dict[str, Any],
    *,
    with_worker: bool = True,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Bot]:
    config = write_apps(root / "apps.yaml", apps, root / "incidents")
    full = settings_env(slack, redis_url, config, root / "workspace")
    full["REWIND_API_TOKEN"] = TOKEN
    full.update(env or {})
    async with running_bot(slack, full, with_worker=with_worker) as bot:
        yield bot


async def report(bot: Bot, app: str, version: str, **extra: str) -> dict[str, Any]:
    async with bot.session.post(
        f"{bot.url}/api/deploys",
        json={"app": app, "version": version, **extra},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as resp:
        body: dict[str, Any] = await resp.json()
        assert resp.status == 202, body
        return body


async def wait_watch(
    bot: Bot, watch_id: str, check: Callable[[Watch], bool], timeout: float = 60
) -> Watch:
    deadline = asyncio.get_running_loop().time() + timeout
    store = bot.runtime.watches.store
    while True:
        watch = await store.load(watch_id)
        if watch is not None and check(watch):
            return watch
        if asyncio.get_running_loop().time() > deadline:
            state = watch.state.value if watch else None
            ticks = len(watch.ticks) if watch else None
            raise AssertionError(f"watch {watch_id} never got there: {state}, {ticks} ticks")
        await asyncio.sleep(0.05)


def proposals(slack: SlackFake, channel: str = "C0INCIDENT") -> list[dict[str, Any]]:
    """The proposals posted in the channel (their context line names the watch)."""
    return [
        m
        for m in slack.messages(channel, top_level=True)
        if "looks bad" in str(m.get("text")) and re.search(r"watch `[0-9a-f]{8}`", str(m))
    ]
