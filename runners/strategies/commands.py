"""commands: the app's own commands (all but `logs` required by the apps file) in a checkout."""

from __future__ import annotations

from runners.strategies.base import VERSION, GitCheckout

COMMANDS = GitCheckout(
    name="commands",
    defaults={"version": VERSION, "logs": ""},
    dependency_file="requirements.txt",
)
