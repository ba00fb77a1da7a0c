"""auto_rollback starts the incident by itself; outgoing webhooks are signed, retried, and a
receiver that stays down is said in the thread without holding the incident up.

The sample app runs on two local "hosts" (the demo's set-up, `ssh.transport: local`) at
v1.5.0, whose health answers 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.cli.demo import _prepare, demo_config
from bot.sample.hosts import stop_app
from tests.slack_fake import SlackFake
from tests.watching import proposals, report, wait_watch, watch_bot


@dataclass
class Receiver:
    """A status page stand-in: /ok answers 500 to the first try of each delivery, /dead 503."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)

    async def ok(self, request: web.Request) -> web.Response:
        body = await request.read()
        delivery = request.headers.get("X-Rewind-Delivery", "")
        self.tries[delivery] += 1
        if self.tries[delivery] == 1:
            return web.Response(status=500)
        self.received.append((dict(request.headers), body))
        return web.Response(status=204)

    async def dead(self, request: web.Request) -> web.Response:
        return web.Response(status=503)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/ok", rec.ok)
    app.router.add_post("/dead/with-a-token", rec.dead)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


@pytest.fixture
def demo_site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    hosts, origin = _prepare(tmp_path / "site", io.StringIO())
    cfg = demo_config(tmp_path / "site", hosts, origin)
    yield cfg
    for workdir, _ in hosts.values():
        with contextlib.suppress(RuntimeError):
            stop_app(workdir)


async def test_auto_rollback_and_signed_retried_webhooks(
    slack: SlackFake, redis_url: str, tmp_path: Path, demo_site: dict[str, Any], receiver: Receiver
) -> None:
    cfg = {
        **demo_site,
        "environment": "staging",
        "approvers": ["U0ALICE"],
        "monitor": {"duration": "1s", "interval": "0.5s"},
        "watch": {"duration": "3s", "interval": "0.25s"},
        "auto_rollback": True,
        "webhooks": [
            {"url": f"{receiver.url}/ok", "secret": "hook-secret"},
            {"url": f"{receiver.url}/dead/with-a-token", "secret": "other"},
        ],
    }
    env = {"REWIND_WEBHOOK_BACKOFF": "0.05"}
    async with watch_bot(slack, redis_url, tmp_path, {"myapp": cfg}, env=env) as bot:
        sent = await report(bot, "myapp", "v1.5.0", by="ci")
        watch = await wait_watch(bot, sent["watch"], lambda w: w.answer is not None)
        assert watch.state.value == "rolling_back" and watch.last_good == "v1.4.2"
        assert watch.answer is not None and watch.answer.choice == "auto"
        incident = await bot.incident()
        assert incident.id == watch.answer.incident and incident.requested_by == "rewind"
        assert "auto_rollback" in incident.reason
        await slack.wait_until(
            lambda: "I started the rollback to `v1.4.2` myself" in str(proposals(slack)),
            what="the proposal saying so",
        )
        [proposal] = proposals(slack)
        assert incident.id in slack.all_text(proposal)
        assert "buttons" not in proposal and "Roll back to" not in slack.all_text(proposal)

        # The decision and the approvals stay with people.
        await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
        await bot.click(await bot.gate("Approve", timeout=90), "Approve", "U0ALICE")
        done = await bot.wait_status("completed", timeout=120)

        await slack.wait_until(
            lambda: any(
                json.loads(body)["event"] == "incident.completed" for _, body in receiver.received
            ),
            timeout=30,
            what="the completed event",
        )
        events = [json.loads(body) for _, body in receiver.received]
        kinds = [e["event"] for e in events]
        assert kinds.count("incident.opened") == 1 and kinds.count("incident.completed") == 1
        steps = {e["step"] for e in events if e["event"] == "incident.step_done"}
        assert {"assess", "redeploy", "verify", "monitor", "report"} <= steps
        assert all(e["incident"] == done.id and e["app"] == "myapp" for e in events)
        for headers, body in receiver.received:
            expected = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
            assert headers["X-Rewind-Signature-256"] == expected
        assert set(receiver.tries.values()) == {2}  # every delivery: refused once, then taken

        await slack.wait_until(
            lambda: "failed after 4 tries (HTTP 503)" in bot.thread_text(),
            timeout=30,
            what="the dead webhook said in the thread",
        )
        assert "with-a-token" not in bot.thread_text()
