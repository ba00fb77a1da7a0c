"""Database backups on a host: where a new one goes, and what `ls` / `stat` say about the rest."""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from datetime import UTC, datetime

from bot.config.apps_file import DatabaseConfig
from bot.workflow.errors import UserFacingError
from runners import templates


def backup_location(db: DatabaseConfig, app: str, incident: str, now: datetime) -> str:
    """Where the new backup goes: `backup_dir` if set, else the directory the `backups`
    command lists, named so that listing finds it."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    inc = re.sub(r"[^A-Za-z0-9._-]+", "-", incident).strip("-") or "incident"
    directory, name = db.backup_dir, f"{app}-{inc}-{stamp}.sql"
    globs = [w for w in shlex.split(db.backups or "") if "*" in w and w.startswith("/")]
    if globs:
        glob_dir, pattern = posixpath.split(globs[0])
        if "backup_dir" not in db.model_fields_set and not any(c in glob_dir for c in "*?["):
            directory = glob_dir
        head, star, tail = pattern.partition("*")
        candidate = f"{head}{inc}-{stamp}{tail}" if head else f"{app}-{inc}-{stamp}{tail}"
        if star and fnmatch.fnmatch(candidate, pattern):
            name = candidate
    return posixpath.join(directory, name)


def parse_stat(output: str) -> dict[str, tuple[int, float]]:
    """`stat -c '%s %Y %n'` lines -> path: (size in bytes, mtime)."""
    found: dict[str, tuple[int, float]] = {}
    for line in output.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            found[parts[2]] = (int(parts[0]), float(parts[1]))
    return found


def parse_listing(output: str) -> list[str]:
    """The paths a `backups` listing printed that may go into a restore command."""
    paths = []
    for line in output.splitlines():
        # `ls` of a glob that matches nothing prints an error, not a file; and a name that
        # cannot go into the restore command is no use either.
        try:
            paths.append(templates.check_value("backup", line.strip()))
        except UserFacingError:
            continue
    return paths
