"""`/rollback GROUP [APP=VERSION …] [reason…]` (issue 22): parsing and the group's rights."""

from __future__ import annotations

import pytest

from bot.fronts.command import parse
from bot.workflow.errors import UserFacingError
from bot.workflow.group import GroupPolicy
from bot.workflow.policy import Actor, Policy, Right
from bot.workflow.render_text import plain
from bot.workflow.version import Version


def test_a_group_with_picked_versions_and_a_reason() -> None:
    cmd = parse("shop storefront=v2.3.1 api=v1.4.2 checkout returns 500")
    assert (cmd.kind, cmd.app, cmd.version) == ("start", "shop", None)
    assert cmd.pins == (("storefront", Version("v2.3.1")), ("api", Version("v1.4.2")))
    assert cmd.reason == "checkout returns 500"
    plan = parse("plan shop api=v1.4.2")
    assert (plan.kind, plan.app, plan.pins) == ("plan", "shop", (("api", Version("v1.4.2")),))
    bare = parse("shop the release broke checkout")
    assert (bare.app, bare.pins, bare.reason) == ("shop", (), "the release broke checkout")


def test_a_pin_is_a_version_and_given_once() -> None:
    with pytest.raises(UserFacingError, match="not a version"):
        parse("shop api=v1;rm reason")
    with pytest.raises(UserFacingError, match="two versions"):
        parse("shop api=v1 api=v2 reason")


OPS = frozenset({"U0CAROL"})
PROD = Policy("storefront", True, OPS, frozenset({"U0ALICE", "U0BOB"}))
STAGING = Policy("worker", False, OPS | {"U0DAVE"}, frozenset({"U0ERIN"}))
GROUP = GroupPolicy("shop", (PROD, STAGING))


def test_operators_of_every_member_may_start_the_group() -> None:
    assert GROUP.production
    assert GROUP.refuse(Actor("U0CAROL"), Right.OPERATE) is None
    refusal = GROUP.refuse(Actor("U0DAVE"), Right.OPERATE)
    assert refusal is not None
    assert "shop" in plain(refusal) and "storefront" in plain(refusal)


def test_approvers_of_the_group_approve_every_production_member_and_four_eyes_holds() -> None:
    assert GROUP.refuse(Actor("U0ALICE"), Right.APPROVE, requested_by="U0CAROL") is None
    refusal = GROUP.refuse(Actor("U0ERIN"), Right.APPROVE, requested_by="U0CAROL")
    assert refusal is not None and "storefront" in plain(refusal)
    four_eyes = GROUP.refuse(Actor("U0ALICE"), Right.APPROVE, requested_by="U0ALICE")
    assert four_eyes is not None and "four-eyes" in plain(four_eyes)
    # No production member: an approver of every member.
    calm = GroupPolicy("calm", (STAGING,))
    assert not calm.production
    assert calm.refuse(Actor("U0ERIN"), Right.APPROVE, requested_by="U0ERIN") is None
