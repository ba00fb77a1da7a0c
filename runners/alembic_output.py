"""What alembic prints, read: `alembic current` and `alembic downgrade --sql`."""

from __future__ import annotations

import re

_CURRENT_LINE = re.compile(r"^([A-Za-z0-9_]+)((?:\s+\([a-z ]+\))*)\s*$")
_LOG_LINE = re.compile(r"^(INFO|WARNING|WARN|ERROR|DEBUG)\s+\[")
_HEX = re.compile(r"^[0-9a-f]{6,40}$")


def parse_current(output: str, known: set[str]) -> list[str]:
    """Revision ids in the output of `alembic current` (log lines and noise skipped)."""
    found: list[str] = []
    for line in output.splitlines():
        match = _CURRENT_LINE.match(line.strip())
        if not match:
            continue
        rev, marks = match.group(1), match.group(2)
        if rev in known or marks or _HEX.match(rev):
            found.append(rev)
    return found


def sql_text(output: str) -> str:
    """The SQL of `alembic downgrade --sql`, without alembic's log lines."""
    return "\n".join(line for line in output.splitlines() if not _LOG_LINE.match(line))
