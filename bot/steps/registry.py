"""Which body runs each step."""

from __future__ import annotations

from bot.steps.context import StepBody
from bot.workflow.model import StepId


def bodies() -> dict[StepId, StepBody]:
    # Imported here so the core can be loaded without the runners' heavy dependencies.
    from bot.steps import (
        assess,
        code,
        database,
        monitor,
        prerequisites,
        redeploy,
        report,
        verify,
    )

    return {
        StepId.PREREQUISITES: prerequisites.run,
        StepId.ASSESS: assess.run,
        StepId.CODE: code.run,
        StepId.DB_PREPARE: database.prepare,
        StepId.DB_ROLLBACK: database.rollback,
        StepId.REDEPLOY: redeploy.run,
        StepId.VERIFY: verify.run,
        StepId.MONITOR: monitor.run,
        StepId.REPORT: report.run,
    }
