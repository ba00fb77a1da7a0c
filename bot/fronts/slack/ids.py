"""Action ids and the small JSON model every button carries, parsed and checked in one place."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, ValidationError


class Action(StrEnum):
    ROLL_BACK = "rewind_roll_back"
    FIX_FORWARD = "rewind_fix_forward"
    APPROVE = "rewind_approve"
    RESTORE = "rewind_restore"  # approve a restore from backup; `option` names the backup
    RETRY = "rewind_retry"
    ABORT = "rewind_abort"
    RUN_PLAN = "rewind_run_plan"  # opens the incident a plan describes; `i` is the plan's id


GROUP_PLAN = "group"  # a `Run this plan` button's `t` when its plan is a group's (`o`: the group)

CHOICE: dict[Action, str] = {
    Action.ROLL_BACK: "roll_back",
    Action.FIX_FORWARD: "fix_forward",
    Action.APPROVE: "approve",
    Action.RESTORE: "restore",
    Action.RETRY: "retry",
    Action.ABORT: "abort",
    Action.RUN_PLAN: "run_plan",
}


ACTION: dict[str, Action] = {choice: action for action, choice in CHOICE.items()}


class ButtonValue(BaseModel):
    """What a button says when clicked: which incident, which gate (token), what answer."""

    i: str = Field(max_length=64)  # incident id
    t: str = Field(max_length=64)  # gate token
    o: str = Field(default="", max_length=1000)  # option, e.g. the backup file for a restore

    def dump(self) -> str:
        return self.model_dump_json(exclude_defaults=True)

    @classmethod
    def parse(cls, raw: str) -> ButtonValue | None:
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            return None
