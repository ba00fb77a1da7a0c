"""`check --connect`: each metric's query run once, its value and verdict shown.

A query that cannot be read (no answer, refused, no data) is a problem: Verify and the monitor
would find it inconclusive and stop. A value beyond its threshold is shown, not a problem: the
config is sound, the service is what it is. A query that needs `{version}` is read during a
rollback only (the version is not known here).
"""

from __future__ import annotations

from typing import TextIO

from bot.checks import Verdict
from bot.checks.placeholders import fields
from bot.config.apps_file import AppsFile
from bot.steps import signals


async def check_signals(apps: AppsFile, out: TextIO) -> list[str]:
    problems: list[str] = []
    env = signals.check_env()
    for app in apps.apps.values():
        for metric in app.metrics:
            if "version" in fields(metric.url) | fields(getattr(metric, "query", "")):
                print(f"  – {app.name}: {metric.name}: uses {{version}}, read during a "
                      "rollback only", file=out)  # fmt: skip
                continue
            checks = signals.checks_of(app, metric, None, env)
            for result in await signals.read(checks, None):
                print(f"  {signals.line(result)} — {result.query}", file=out)
                if result.verdict is Verdict.INCONCLUSIVE:
                    problems.append(f"{app.name}: metric {result.summary()}")
    return problems
