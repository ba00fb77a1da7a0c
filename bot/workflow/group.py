"""Release groups, pure: apps released together (the apps file's `groups:`), rolled back in
their order, and when each shared database may be downgraded.

A database is downgraded only after every app that uses it has been redeployed. Which apps use
which database is the apps file's `database.name` (apps whose database has the same name share
it); a group where an app's database has no name is read strictly: each database of the group
waits until every member is redeployed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# The first words of `/rollback …` that are commands, not apps or groups: a group (or an app)
# may not be called one of them.
COMMAND_WORDS = ("status", "list", "cancel", "unfreeze", "help", "release", "plan")


@dataclass(frozen=True)
class Member:
    """One app of a group, in rollback order, with the name of its database if it has one."""

    app: str
    has_database: bool = False
    database: str | None = None  # `database.name`; None: not named (the strict reading)


@dataclass(frozen=True)
class Downgrade:
    """A database of the group: downgraded once, by `owner` (the first member that uses it),
    after the redeploy of every app in `after`."""

    database: str  # its name, or the owner's app name when unnamed
    owner: str
    users: tuple[str, ...]
    after: tuple[str, ...]


def downgrades(members: Sequence[Member]) -> list[Downgrade]:
    """Each database of the group once, in the order its owner comes in the group."""
    everyone = tuple(m.app for m in members)
    strict = any(m.has_database and m.database is None for m in members)
    found: dict[str, list[str]] = {}
    for m in members:
        if m.has_database:
            found.setdefault(m.database or f"app:{m.app}", []).append(m.app)
    out: list[Downgrade] = []
    for key, users in found.items():
        name = key.removeprefix("app:")
        after = everyone if strict else tuple(users)
        out.append(Downgrade(database=name, owner=users[0], users=tuple(users), after=after))
    return out


def downgrade_due(down: Downgrade, redeployed: Sequence[str]) -> bool:
    """Every app the downgrade waits for is redeployed."""
    return all(app in redeployed for app in down.after)
