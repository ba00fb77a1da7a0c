"""Who may do what. Pure: the caller resolves the user's groups first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.workflow.messages import Emphasis, Mention, Message, message

# The environment names that exist when the apps file has no `environments:` key, listed once:
# the apps file checks every app's `environment` against them (or against that key), and the
# production ones get four-eyes and refuse `auto_rollback`.
PRODUCTION_ENVIRONMENTS = ("production", "prod", "live")
NON_PRODUCTION_ENVIRONMENTS = (
    "staging", "stage", "development", "dev", "test", "qa", "uat", "sandbox",
)  # fmt: skip


def is_production(
    environment: str, non_production: Iterable[str] = NON_PRODUCTION_ENVIRONMENTS
) -> bool:
    """Production unless the name is a known non-production one: a name nobody declared (an
    incident stored before `environments:` existed, a typo) keeps every protection."""
    return environment.strip().lower() not in {n.lower() for n in non_production}


class Right(StrEnum):
    OPERATE = "operate"  # start, decide, retry, abort, cancel
    APPROVE = "approve"  # approvals; approvers may also operate


@dataclass(frozen=True)
class Actor:
    user: str
    groups: frozenset[str] = field(default_factory=frozenset)

    def ids(self) -> frozenset[str]:
        return self.groups | {self.user}


class Rules(Protocol):
    """Who may answer an incident's questions: one app's `Policy`, or a group's
    (`bot.workflow.group.GroupPolicy`)."""

    @property
    def production(self) -> bool: ...

    def refuse(
        self, actor: Actor, right: Right, *, requested_by: str | None = None
    ) -> Message | None: ...


@dataclass(frozen=True)
class Policy:
    app: str
    production: bool
    operators: frozenset[str]
    approvers: frozenset[str]

    def refuse(
        self, actor: Actor, right: Right, *, requested_by: str | None = None
    ) -> Message | None:
        """The reason `actor` may not do it, in plain words, or None when allowed."""
        ids = actor.ids()
        is_approver = bool(ids & self.approvers)
        if right is Right.OPERATE:
            if is_approver or ids & self.operators:
                return None
            return message(
                Mention(actor.user),
                " is not an operator or approver of ",
                Emphasis(self.app),
                ". Ask someone listed in its `operators` or `approvers`.",
            )
        if not is_approver:
            return message(
                "Only an approver of ",
                Emphasis(self.app),
                " may approve this; ",
                Mention(actor.user),
                " is not one. Ask someone listed in its `approvers`.",
            )
        if self.production and requested_by == actor.user:
            return message(
                Emphasis(self.app),
                " is production: four-eyes applies, so the person who started the "
                "rollback cannot approve it. Ask another approver.",
            )
        return None
