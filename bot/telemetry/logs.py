"""Logging as an operator reads it: text or one JSON object per line (`LOG_FORMAT`), the
incident id on every line of an incident's work, and no token or secret, ever."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

# Set while a step, a transition or a command of an incident runs; asyncio copies it into tasks.
INCIDENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("incident", default=None)

_TEXT = "%(asctime)s %(levelname)s %(name)s%(incident_tag)s: %(message)s"


class _Context(logging.Filter):
    """Adds the incident id, and hides every secret the process knows of."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so that a secret containing another is hidden whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        incident = getattr(record, "incident", None) or INCIDENT.get()
        record.incident = incident
        record.incident_tag = f" [{incident}]" if incident else ""
        if self.secrets:
            text = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            clean, exc_text = self._hide(text), self._hide(record.exc_text or "")
            if clean != text or exc_text != (record.exc_text or ""):
                record.msg, record.args = clean, None
                record.exc_text = exc_text or None
        return True

    def _hide(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, incident, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        incident = getattr(record, "incident", None)
        if incident:
            out["incident"] = incident
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["traceback"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


# Rewind's own loggers; every other one (saq, asyncssh, aiohttp, slack_bolt, redis, urllib3…)
# is a third party's, kept at WARNING unless LOG_LEVEL=debug: saq alone says at INFO how it
# reaches Redis, and aiohttp logs every request.
OURS = ("bot", "handlers", "runners", "rewind")


def setup(
    fmt: str = "text",
    *,
    secrets: Iterable[str] = (),
    level: int = logging.INFO,
    stream: TextIO | None = None,
) -> None:
    """`level` is Rewind's own; third parties log at WARNING, or DEBUG with `level` DEBUG."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_Context(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if level <= logging.DEBUG else max(level, logging.WARNING))
    for name in OURS:
        logging.getLogger(name).setLevel(level)


def level_of(name: str) -> int:
    """`LOG_LEVEL`'s value as a logging level."""
    return logging.DEBUG if name == "debug" else logging.INFO
