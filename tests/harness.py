"""The bot, really running: its HTTP endpoint on 127.0.0.1, a worker, real Redis, the Slack fake.

Tests talk to it only as Slack would: signed requests to `/slack/events`, and they read what a
person would see from the fake's message store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from bot.app.assembly import Runtime, build_runtime, run_worker, web_app
from bot.config.apps_file import load_apps
from bot.config.settings import Settings
from tests.slack_fake import SentResponse, SlackFake, buttons, click, send_command

# Seconds between two messages to one channel for the bots these tests run in-process (from the
# environment for a comparison run). The Slack stand-in has no rate limit unless a test sets one;
# the bots the tests start as processes (tests/processes.py) keep Slack's one a second, and so do
# the tests of the pacing itself, which build their own notifier.
PACING = float(os.environ.get("REWIND_TEST_PACING", "0.2"))

SECRET = "test-signing-secret"
INCIDENT_CHANNEL = "C0INCIDENT"
_names = itertools.count(1)
# One count for every bot of a test: a second bot on the same Slack fake never reuses a name.
_RESPONSES = itertools.count(1)


@dataclass
class SlackView:
    """What people see of an incident in the Slack fake: replies, the parent, its thread, the
    buttons in it."""

    slack: SlackFake
    # A command refused at its ack is answered there only (its response_url stays unused).
    refused_at_ack: dict[str, str] = field(default_factory=dict, kw_only=True)

    async def reply(self, name: str, timeout: float = 20) -> str:
        """What the bot told the user: the refusal its ack carried, else what it said through
        the command's response_url."""
        if name in self.refused_at_ack:
            return self.refused_at_ack[name]
        call = await self.slack.wait_for(
            lambda c: c.method == "response_url" and c.args.get("name") == name, timeout=timeout
        )
        return str(call.args.get("text", ""))

    def parent(self) -> dict[str, Any]:
        return self.slack.messages(INCIDENT_CHANNEL, top_level=True)[-1]

    async def parent_shows(self, *texts: str, timeout: float = 10) -> str:
        """The parent is updated at most once a second: wait until it shows `texts`."""
        await self.slack.wait_until(
            lambda: all(t in self.slack.all_text(self.parent()) for t in texts),
            timeout=timeout,
            what=f"parent showing {texts}",
        )
        return str(self.slack.all_text(self.parent()))

    def thread(self) -> list[dict[str, Any]]:
        return self.slack.thread(INCIDENT_CHANNEL, str(self.parent()["ts"]))

    def thread_text(self) -> str:
        return "\n".join(self.slack.all_text(m) for m in self.thread())

    async def said(self, *texts: str, timeout: float = 30) -> str:
        """The thread once it holds every one of `texts`. A question goes ahead of the output
        still queued, so a step's lines may land after the buttons that follow it."""
        await self.slack.wait_until(
            lambda: all(t in self.thread_text() for t in texts), timeout=timeout, what=str(texts)
        )
        return self.thread_text()

    async def gate(self, label: str, timeout: float = 60) -> dict[str, Any]:
        """Wait for the newest thread message that has a button containing `label`."""

        def find() -> dict[str, Any] | None:
            if not self.slack.messages(INCIDENT_CHANNEL, top_level=True):
                return None
            for msg in reversed(self.thread()):
                if any(label.lower() in b.text.lower() for b in buttons(msg)):
                    return msg
            return None

        await self.slack.wait_until(lambda: find() is not None, timeout=timeout, what=label)
        found = find()
        assert found is not None
        return found


@dataclass
class Bot(SlackView):
    runtime: Runtime
    url: str
    session: aiohttp.ClientSession
    config_path: Path
    env: dict[str, str]
    worker: asyncio.Task[None] | None = None
    responses: itertools.count[int] = field(default_factory=lambda: _RESPONSES)

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    async def command(
        self, text: str, user: str = "U0CAROL", **kw: Any
    ) -> tuple[SentResponse, str]:
        """Send `/rollback text`; returns the HTTP answer and the response_url it used."""
        name = f"cmd{next(self.responses)}"
        response_url = self.slack.response_url(name)
        resp = await send_command(
            self.session,
            self.events_url,
            SECRET,
            text=text,
            user_id=user,
            response_url=response_url,
            **kw,
        )
        # Bolt answers an ack's text as the body itself (JSON only with blocks).
        said = str(resp.json().get("text", "")) if resp.text.startswith("{") else resp.text
        if resp.status == 200 and said.startswith(":warning:"):
            self.refused_at_ack[name] = said
        return resp, name

    async def click(
        self, message: dict[str, Any], label: str, user: str, **kw: Any
    ) -> tuple[SentResponse, str]:
        name = f"act{next(self.responses)}"
        resp = await click(
            self.session,
            self.events_url,
            SECRET,
            message=message,
            label=label,
            user_id=user,
            channel_id=INCIDENT_CHANNEL,
            response_url=self.slack.response_url(name),
            **kw,
        )
        return resp, name

    async def incident(self) -> Any:
        incidents = await self.runtime.store.recent_incidents(1)
        return incidents[0] if incidents else None

    async def wait_status(self, *statuses: str, timeout: float = 90) -> Any:
        async def check() -> Any:
            inc = await self.incident()
            return inc if inc is not None and inc.status.value in statuses else None

        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if (inc := await check()) is not None:
                return inc
            await asyncio.sleep(0.1)
        inc = await self.incident()
        steps = [(r.id.value, r.status.value, r.summary[:200]) for r in inc.steps] if inc else []
        raise AssertionError(
            f"incident never reached {statuses}: {inc and inc.status}; steps: {steps}; "
            f"the thread's end: {self.thread_text()[-2000:]}"
        )

    async def wait_step(self, step: str, *statuses: str, timeout: float = 90) -> None:
        """Until the incident's `step` is in one of `statuses` (by default: running)."""
        wanted = statuses or ("running",)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            inc = await self.incident()
            if inc is not None and inc.step(step).status.value in wanted:
                return
            assert asyncio.get_running_loop().time() < deadline, f"{step} never {wanted}"
            await asyncio.sleep(0.1)


def write_apps(path: Path, apps: dict[str, Any], incidents_dir: Path) -> Path:
    path.write_text(yaml.safe_dump({"apps": apps, "incidents": {"dir": str(incidents_dir)}}))
    return path


def settings_env(slack: SlackFake, redis_url: str, config: Path, workspace: Path) -> dict[str, str]:
    n = next(_names)
    return {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "REDIS_URL": redis_url,
        "REWIND_CONFIG": str(config),
        "REWIND_WORKSPACE": str(workspace),
        "REWIND_QUEUE": f"rewind-test-{n}",
        # Each bot a process of its own, as in production: two bots of one test process would
        # otherwise share its `host:pid` id, and the second would take the first's running step
        # (and its leases) for its own.
        "REWIND_WORKER_ID": f"in-process-bot-{n}",
        "REWIND_HEARTBEAT": "2",
        "REWIND_SWEEP": "1",
    }


@contextlib.asynccontextmanager
async def running_bot(
    slack: SlackFake, env: dict[str, str], *, with_worker: bool = True
) -> AsyncIterator[Bot]:
    settings = Settings.model_validate(env)
    apps = load_apps(settings.config_path)
    runtime = build_runtime(settings, apps, pacing=PACING)
    app = web_app(runtime, with_worker=with_worker)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        bot = Bot(slack, runtime, f"http://127.0.0.1:{port}", session, settings.config_path, env)
        try:
            yield bot
        finally:
            await runner.cleanup()


__all__ = ["Bot", "run_worker", "running_bot", "settings_env", "write_apps"]
