"""An incident that ends without its scratch copy's downgrade (aborted, or restored instead)
has the copy removed at its end; one whose downgrade removed it runs nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.incidents.left_copies import LeftCopies
from bot.ports import CommandResult, ScriptCommand
from bot.workflow.group import Downgrade, step_order
from bot.workflow.model import StepId, StepRecord, StepStatus
from bot.workflow.steps import ORDER
from tests.fakes import app_config, make_apps, new_incident


class Runner:
    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []
        self.closed = 0

    async def run(self, host: str, command: str, **_: Any) -> CommandResult:
        self.ran.append((host, command))
        return CommandResult(host, command, 0, "", 0.0)

    async def run_script(self, host: str, commands: Sequence[ScriptCommand], **_: Any) -> Any:
        raise AssertionError("not used")

    async def close(self) -> None:
        self.closed += 1


async def test_the_copy_is_removed_at_the_end_unless_the_downgrade_removed_it() -> None:
    config = app_config("/tmp/r.git", [{"name": "web1", "address": "10.0.0.1"}], "/srv/myapp")
    config["database"] = {"run_on": "web1", "backup": "pg_dump -f {backup}"}
    apps = make_apps(config)
    runner = Runner()
    left = LeftCopies(apps, lambda app: runner)
    incident = new_incident(apps.apps["myapp"], incident_id="f00d42")
    late = Downgrade("db", "myapp", ("myapp",), ("myapp",), scratch=True)
    incident.steps = [StepRecord(id=s) for s in step_order(ORDER, late)]

    await left.remove(incident)  # its database step never ran: nothing was made
    assert runner.ran == []
    incident.step(StepId.DB_PREPARE).status = StepStatus.SUCCEEDED  # then aborted
    await left.remove(incident)
    where = "/srv/myapp/.git/rewind-downgrade-f00d42"
    assert runner.ran == [("web1", f"rm -rf -- {where} {where}.new {where}.tar")]
    assert runner.closed == 1
    runner.ran.clear()
    incident.step(StepId.DB_ROLLBACK).status = StepStatus.SUCCEEDED
    incident.db_method = "downgrade"  # it removed the copy itself
    await left.remove(incident)
    assert runner.ran == []
    incident.db_method = "restore"  # a restore leaves it: removed at the end
    await left.remove(incident)
    assert len(runner.ran) == 1
    # An app whose downgrade runs before its redeploy makes no copy.
    incident.steps = [StepRecord(id=s, status=StepStatus.SUCCEEDED) for s in ORDER]
    runner.ran.clear()
    await left.remove(incident)
    assert runner.ran == []
