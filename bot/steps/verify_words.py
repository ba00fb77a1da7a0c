"""What Verify says of a kind of check that has no words of its own (`bot.checks.kinds.Words`,
given with `@kind`): the one way every check can be said, its verdict, value and threshold.
The team's metrics, resource usage and any new kind are said so; the runbook's own checks
(health URLs, logs, smoke tests), whose words people know from before, have their own.
"""

from __future__ import annotations

from bot.checks.kinds import Words, registry
from bot.steps import signals

SIGNALS = Words(
    title="Signals",
    line=lambda r: ["\n" + signals.line(r)],
    bad=lambda r: r.summary(),
    failure=lambda r: f"signal {r.summary()}",
)


def words(kind: str) -> Words:
    """The words of kind `kind`: its own, or those every check has."""
    found = registry().get(kind)
    return found.words if found is not None and found.words is not None else SIGNALS
