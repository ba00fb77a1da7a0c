"""Secrets never reach a log line: credentials in URLs and Slack tokens are masked.

asyncssh logs every command it runs, and a command may carry a database URL with its password
(the apps file's `alembic`, `backup` or `restore`); a library may log a Redis URL. Every log
record is masked when it is made, whichever logger made it and wherever it goes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_URL_PASSWORD = re.compile(r"(?<=://)([^/@\s:'\"]*):[^/@\s'\"]+@")
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{6,}")


def redact(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://user:***@host`; Slack tokens -> `xoxb-***`."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:***@", text)
    return _SLACK_TOKEN.sub(lambda m: m.group(0).split("-", 1)[0] + "-***", text)


_installed = False


def install_log_redaction() -> None:
    """Mask secrets in every log record from now on (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logging's to report, not ours
            return record
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return record

    logging.setLogRecordFactory(factory)
