"""Release groups, pure: apps released together (the apps file's `groups:`), rolled back in
their order, and when each shared database is downgraded; the group's rights.

A database is downgraded only after every other app that uses it has been redeployed. Which
apps share a database is the apps file's `database.name` (apps whose databases have the same
name share one); the last of them in the group's order owns it: its steps back it up and
downgrade it, once, right before its own redeploy, because `alembic downgrade` needs the newer
revision files that the redeploy removes from its hosts. The others skip their database steps.
A database without a name is read strictly: its app must come last in the group (the apps file
check says so), so that every other member is redeployed before it is downgraded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.workflow.messages import Emphasis, Message, message, para
from bot.workflow.policy import Actor, Policy, Right

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
    """A database of the group: downgraded once, by `owner` (the last member that uses it,
    right before its own redeploy), after the redeploy of every app in `after`."""

    database: str  # its name, or the owner's app name when unnamed
    owner: str
    users: tuple[str, ...]
    after: tuple[str, ...]  # the apps redeployed before it is downgraded


def downgrades(members: Sequence[Member]) -> list[Downgrade]:
    """Each database of the group once, in the order its owner comes in the group."""
    order = [m.app for m in members]
    found: dict[str, list[str]] = {}
    for m in members:
        if m.has_database:
            found.setdefault(m.database or f"app:{m.app}", []).append(m.app)
    out: list[Downgrade] = []
    for key, users in found.items():
        owner = users[-1]
        strict = key.startswith("app:")
        after = order[: order.index(owner)] if strict else users[:-1]
        out.append(Downgrade(key.removeprefix("app:"), owner, tuple(users), tuple(after)))
    return sorted(out, key=lambda d: order.index(d.owner))


def shared_with(members: Sequence[Member], app: str) -> str | None:
    """The member that downgrades `app`'s shared database when it is not `app` itself."""
    for down in downgrades(members):
        if app in down.users and down.owner != app:
            return down.owner
    return None


def unnamed_not_last(members: Sequence[Member]) -> list[str]:
    """Apps whose database has no name yet come before another member: their downgrade could
    not wait for the apps after them (the apps file refuses it)."""
    return [m.app for m in members[:-1] if m.has_database and m.database is None]


def downgrade_due(down: Downgrade, redeployed: Sequence[str]) -> bool:
    """Every app the downgrade waits for is redeployed."""
    return all(app in redeployed for app in down.after)


@dataclass(frozen=True)
class GroupPolicy:
    """A group's rights: whoever may operate every member may start, retry and abort; an
    approval needs an approver of every production member (of every member when none is
    production); four-eyes applies when any member is production."""

    group: str
    members: tuple[Policy, ...]

    @property
    def production(self) -> bool:
        return any(p.production for p in self.members)

    def refuse(
        self, actor: Actor, right: Right, *, requested_by: str | None = None
    ) -> Message | None:
        judged = self.members
        if right is Right.APPROVE and self.production:
            judged = tuple(p for p in self.members if p.production)
        for policy in judged:
            if reason := policy.refuse(actor, right, requested_by=requested_by):
                said = "The group ", Emphasis(self.group), " needs this right on each of its apps. "
                return message(para(*said), *reason.blocks)
        return None
