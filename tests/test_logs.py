"""LOG_FORMAT: text or one JSON object per line; the incident id on each line of its work; no
token or secret in any line, tracebacks included."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
from collections.abc import Iterator

import pytest

from bot.config.settings import Settings
from bot.telemetry import logs

TOKEN = "xoxb-1234-secret-token"
SIGNING = "signing-secret-value"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield stream
    root.handlers, root.level = saved[0], saved[1]


def settings() -> Settings:
    return Settings.model_validate(
        {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING,
            "REDIS_URL": "redis://:redis-pass-word@127.0.0.1:6379/0",
        }
    )


async def test_json_lines_carry_the_incident_and_no_secret(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):  # only this test's secrets, whatever the environment holds
        if name.startswith(("SLACK_", "REWIND_", "GITHUB_", "REDIS_")):
            monkeypatch.delenv(name)
    s = settings()
    assert set(s.secret_values()) >= {TOKEN, SIGNING, "redis-pass-word"}
    logs.setup("json", secrets=s.secret_values(), stream=captured)
    log = logging.getLogger("rewind.test")

    async def step_work(incident: str) -> None:
        logs.INCIDENT.set(incident)
        log.info("step redeploy started")
        await asyncio.sleep(0)
        try:
            raise RuntimeError(f"Slack said no to {TOKEN}")
        except RuntimeError:
            log.exception("posting with token %s failed", TOKEN)

    await asyncio.gather(step_work("a1b2c3"), step_work("d4e5f6"))
    log.info("between incidents, redis at redis://:redis-pass-word@127.0.0.1")

    lines = captured.getvalue().splitlines()
    records = [json.loads(line) for line in lines]  # one object per line, every line
    assert len(records) == 5
    assert [r.get("incident") for r in records] == ["a1b2c3", "d4e5f6", "a1b2c3", "d4e5f6", None]
    text = captured.getvalue()
    assert TOKEN not in text and "redis-pass-word" not in text
    # Masked, not dropped: by this setup's secrets ("***"), or earlier, when the record is made,
    # by the process-wide redaction an assembled runtime installs ("xoxb-***").
    assert re.search(r"posting with token (xoxb-)?\*\*\* failed", text)
    assert re.search(r"Slack said no to (xoxb-)?\*\*\*", records[2]["traceback"])


def test_text_lines_tag_the_incident(captured: io.StringIO) -> None:
    logs.setup("text", secrets=[SIGNING], stream=captured)
    logs.INCIDENT.set("c0ffee")
    try:
        logging.getLogger("rewind.test").warning("bad signature %s", SIGNING)
    finally:
        logs.INCIDENT.set(None)
    line = captured.getvalue().strip()
    assert "WARNING rewind.test [c0ffee]: bad signature ***" in line
