"""Release groups, pure: apps released together (the apps file's `groups:`), rolled back in
their order, and when each shared database is downgraded; the group's rights.

A database is downgraded only after every other app that uses it has been redeployed. Which
apps share a database is the apps file's `database.name` (apps whose databases have the same
name share one); the last of them in the group's order owns it: its steps back it up and
downgrade it, once. The others skip their database steps. The backup is taken before the
owner's redeploy and the downgrade runs after it, after EVERY app that uses the database is
redeployed, in a copy of the version rolled back from that still holds the newer revision
files `alembic downgrade` needs: the owner's kept release when it keeps releases
(`deploy.releases: 2` or more), else a scratch copy of the deployed commit that its database
step makes on `run_on` before the redeploy (a git checkout strategy). An owner that has neither
(a strategy without a checkout, such as kubernetes) is downgraded after its redeploy too, where
`alembic` always runs (`database.run_on`'s workdir): that redeploy changes no file there. If the
workdir's alembic no longer knows the newer revision, the step stops and runs nothing.
A database without a name is read strictly: its app must come last in the group (the apps file
check says so), so that every other member is redeployed before it is downgraded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.workflow.messages import Emphasis, Message, message, para
from bot.workflow.model import StepId
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
    # `deploy.releases` of 2 or more: the release rolled back from stays on the hosts, so the
    # database can be downgraded there after this app's own redeploy.
    keeps_releases: bool = False
    # A git checkout on its hosts: the deployed commit can be copied aside before the redeploy
    # (a scratch copy), and the database downgraded in it after this app's own redeploy.
    checkout: bool = False


@dataclass(frozen=True)
class Downgrade:
    """A database of the group: downgraded once, by `owner` (the last member that uses it),
    after the redeploy of every app in `after`, the owner's own included: in its
    kept release, in a scratch copy of its git checkout, or, with neither, where its alembic
    runs, which its redeploy leaves alone (`in_place`)."""

    database: str  # its name, or the owner's app name when unnamed
    owner: str
    users: tuple[str, ...]
    after: tuple[str, ...]  # the apps redeployed before it is downgraded, its owner last
    scratch: bool = False  # in a scratch copy of the deployed commit (no kept release)
    in_place: bool = False  # no copy: the workdir, which the owner's redeploy leaves alone


def downgrades(members: Sequence[Member]) -> list[Downgrade]:
    """Each database of the group once, in the order its owner comes in the group."""
    order = [m.app for m in members]
    found: dict[str, list[str]] = {}
    for m in members:
        if m.has_database:
            found.setdefault(m.database or f"app:{m.app}", []).append(m.app)
    keeps = {m.app for m in members if m.keeps_releases}
    copies = {m.app for m in members if m.checkout and not m.keeps_releases}
    out: list[Downgrade] = []
    for key, users in found.items():
        owner = users[-1]
        strict = key.startswith("app:")
        after = order[: order.index(owner)] if strict else users[:-1]
        scratch = owner in copies
        in_place = owner not in keeps and not scratch
        after = [*after, owner]  # the owner's own redeploy too, whatever keeps the files
        name = key.removeprefix("app:")
        down = Downgrade(
            name,
            owner,
            tuple(users),
            tuple(after),
            scratch=scratch,
            in_place=in_place,
        )
        out.append(down)
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


def owned(members: Sequence[Member], app: str) -> Downgrade | None:
    """The shared database `app` downgrades, if it owns one."""
    return next((d for d in downgrades(members) if d.owner == app), None)


def _names(apps: Sequence[str]) -> str:
    named = [f"`{a}`" for a in apps]
    return ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else "".join(named)


def when_words(down: Downgrade) -> str:
    """When the shared database is downgraded, and why then: said in the group's thread."""
    after = _names(down.after)
    were = "are" if len(down.after) > 1 else "is"
    if down.scratch:
        return (
            f"The shared database `{down.database}` is backed up by `{down.owner}` before its "
            f"redeploy, with a scratch copy of the version rolled back from made on its host, "
            f"and downgraded once, after {after} {were} redeployed: in that scratch copy, which "
            "still holds the newer revision files (removed once the downgrade is done)."
        )
    if down.in_place:
        return (
            f"The shared database `{down.database}` is backed up by `{down.owner}` before its "
            f"redeploy and downgraded once, after {after} {were} redeployed: where "
            f"`{down.owner}`'s alembic runs, which its redeploy does not change (no git "
            "checkout: it moves no revision file)."
        )
    return (
        f"The shared database `{down.database}` is backed up by `{down.owner}` before its "
        f"redeploy and downgraded once, after {after} {were} redeployed: in `{down.owner}`'s "
        "kept release of the version rolled back from, which still holds the newer "
        "revision files."
    )


def step_order(order: Sequence[StepId], down: Downgrade | None) -> list[StepId]:
    """The owner's steps when it downgrades after its own redeploy: the backup (and the SQL
    preview) before the redeploy, the downgrade after it, before Verify."""
    if down is None:
        return list(order)
    out: list[StepId] = [s for s in order if s is not StepId.DB_ROLLBACK]
    out.insert(out.index(StepId.REDEPLOY) + 1, StepId.DB_ROLLBACK)
    return out


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
