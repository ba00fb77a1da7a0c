"""A scratch copy an incident left on a host (its database step made it before the redeploy;
the downgrade removes it once the database is at the target): removed when the incident ends
without that downgrade (aborted, cancelled, or restored from a backup instead)."""

from __future__ import annotations

import logging

from bot.config.apps_file import AppsFile
from bot.incidents.host_runners import RunnerFactory
from bot.steps.database.commands import makes_scratch_copy, scratch_copy_removal
from bot.workflow.errors import RewindError
from bot.workflow.model import Incident, StepId, StepStatus

log = logging.getLogger(__name__)


class LeftCopies:
    def __init__(self, apps: AppsFile, factory: RunnerFactory) -> None:
        self.apps, self.factory = apps, factory

    async def remove(self, incident: Incident) -> None:
        """Never raises: a copy left behind is small, and said in the log."""
        app = self.apps.app(incident.app)
        db = app.database if app is not None else None
        if app is None or db is None:
            return
        if not makes_scratch_copy(app, [r.id for r in incident.steps]):
            return
        prepared = incident.step(StepId.DB_PREPARE).status
        downgraded = incident.step(StepId.DB_ROLLBACK).status is StepStatus.SUCCEEDED
        if prepared in {StepStatus.PENDING, StepStatus.SKIPPED} or (
            downgraded and incident.db_method == "downgrade"  # it removed the copy itself
        ):
            return
        runner = self.factory(app)
        try:
            command = scratch_copy_removal(app, db, incident.id)
            result = await runner.run(db.run_on, command, timeout=60)
            if not result.ok:
                log.warning("incident %s: %s failed: %s", incident.id, command, result.tail())
        except (RewindError, OSError) as exc:
            log.warning("incident %s: the scratch copy was not removed: %s", incident.id, exc)
        finally:
            await runner.close()
