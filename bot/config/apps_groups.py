"""The apps file's `groups:` checked on the raw data, in the same pass as every other check:
a group names known apps (else "did you mean"), each once, at least one, and its name is
neither an app's nor a `/rollback` command's (`/rollback NAME` must mean one thing)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from bot.config.apps_problems import Loc, did_you_mean, dotted, line_of
from bot.workflow.errors import Problem
from bot.workflow.group import COMMAND_WORDS

_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def group_problems(data: Mapping[str, Any], lines: Mapping[Loc, int]) -> list[Problem]:
    groups = data.get("groups")
    if not isinstance(groups, Mapping):
        return []  # absent, or a wrong type the model reports
    apps = data.get("apps")
    app_names = [str(n) for n in apps] if isinstance(apps, Mapping) else []
    found = list(_found(groups, app_names)) + list(_databases(groups, apps))
    return [Problem(dotted(loc), what, fix, line_of(lines, loc)) for loc, what, fix in found]


def _databases(groups: Mapping[Any, Any], apps: Any) -> Iterator[tuple[Loc, str, str]]:
    """A database without `name` is the strict reading: its app comes last in its group."""
    if not isinstance(apps, Mapping):
        return
    for raw_name, members in groups.items():
        if not isinstance(members, list):
            continue
        for i, member in enumerate(members[:-1]):
            app = apps.get(member) if isinstance(member, str) else None
            db = app.get("database") if isinstance(app, Mapping) else None
            if isinstance(db, Mapping) and not db.get("name"):
                yield (
                    ("groups", str(raw_name), i),
                    (
                        f"`{member}` has a database without a name and is not last in the group: "
                        "Rewind cannot tell whether the apps after it use that database"
                    ),
                    (
                        f"give it `database.name` (apps whose databases have the same name share "
                        f"one), or put `{member}` last"
                    ),
                )


def _found(groups: Mapping[Any, Any], apps: list[str]) -> Iterator[tuple[Loc, str, str]]:
    for raw_name, members in groups.items():
        name = str(raw_name)
        at: Loc = ("groups", name)
        if not _ID.match(name):
            yield at, "group names: letters, digits, . _ - only", "rename the group"
        if name in apps:
            yield (
                at,
                f"`{name}` is also an app, so `/rollback {name}` would mean either",
                ("rename the group (e.g. `" + name + "-release`)"),
            )
        if name.lower() in COMMAND_WORDS:
            yield at, f"`{name}` is a `/rollback` command", "rename the group"
        if not isinstance(members, list):
            continue  # the model says what type it needs
        if not members:
            yield at, "an empty group", "list its apps in rollback order, e.g. [storefront, api]"
        seen: set[str] = set()
        for i, member in enumerate(members):
            if not isinstance(member, str):
                continue
            loc: Loc = (*at, i)
            if member in seen:
                yield loc, f"`{member}` is listed twice", "list each app once, in rollback order"
            seen.add(member)
            if member not in apps:
                hint = did_you_mean(member, apps) or "known apps: " + ", ".join(sorted(apps))
                yield loc, f"`{member}` is not an app of this file", hint
