"""Step 3 — Roll back the database with alembic, or restore it from a backup.

Alembic only ever runs on the `run_on` host, in its checkout. That checkout still holds the
deployed (newer) version while this step runs: the older code does not know the newer
revisions, so the downgrade must happen before the redeploy moves the hosts back. The one
exception: a release group's shared database is downgraded after its owner's redeploy, in the
kept release of the deployed version when the owner keeps releases, else in a scratch copy of
the deployed commit that Prepare makes before the redeploy, removed once the database is at
the target (`KeptRelease`: its marker is read first, and a copy missing or at another commit is
refused, nothing run).
Revision files are read from the bot's clone as text (`runners.alembic_static`), never imported.

`commands` builds what runs (for the run and the plan), `revision` reads the database's revision,
`backup` and `prepare` are the prepare step, `downgrade` and `restore` the rollback step.
"""

from __future__ import annotations

from bot.steps.database.backup import listed_backups, own_backup, read_deployed_at, stat_backups
from bot.steps.database.commands import (
    KeptRelease,
    PrepareCommands,
    RestoreCommands,
    current_command,
    downgrade_command,
    kept_release,
    prepare_commands,
    restore_commands,
    rollback_sequence,
    scratch_copy,
    short,
    sql_revision,
)
from bot.steps.database.downgrade import rollback
from bot.steps.database.prepare import prepare
from bot.steps.database.revision import assess_db, current_revision

__all__ = [
    "KeptRelease",
    "PrepareCommands",
    "RestoreCommands",
    "assess_db",
    "current_command",
    "current_revision",
    "downgrade_command",
    "kept_release",
    "listed_backups",
    "own_backup",
    "prepare",
    "prepare_commands",
    "read_deployed_at",
    "restore_commands",
    "rollback",
    "rollback_sequence",
    "scratch_copy",
    "short",
    "sql_revision",
    "stat_backups",
]
