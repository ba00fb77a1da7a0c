"""What Verify says of each kind of check, from its typed results: its section in the thread,
its words on a host's line and in Verify's error, its line on the status line while it is read
again.

A kind with no words here (the team's metrics, resource usage, a new kind) is said the one way
every check can be: its verdict, value and threshold (`SIGNALS`); only the runbook's own checks,
whose words people know from before, have their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.checks import CheckResult
from bot.steps import signals
from bot.workflow.messages import Block, CodeBlock, Inline

SHOWN_MATCHES = 20

Parts = list[Block | Inline]


def _mark(r: CheckResult) -> str:
    return "✅" if r.passed else "❌"


@dataclass(frozen=True)
class Words:
    title: str  # the section's heading in the thread; kinds of one title share a section
    line: Callable[[CheckResult], Parts]  # one result in its section, each part after a newline
    bad: Callable[[CheckResult], str]  # on its host's line, when it does not pass
    failure: Callable[[CheckResult], str]  # in Verify's error, when it does not pass
    good: Callable[[int], str] | None = None  # on its host's line when all n there pass
    status: str = "signals"  # the status line it is waited on (the parent's `waiting` key)
    waiting: Callable[[CheckResult], str] = lambda r: r.name  # while it is read again
    wait_line: Callable[[list[str], str], str] = lambda said, so_far: (
        f"{', '.join(said[:3])} not passing yet — re-reading, {so_far}"
    )


SIGNALS = Words(
    title="Signals",
    line=lambda r: ["\n" + signals.line(r)],
    bad=lambda r: r.summary(),
    failure=lambda r: f"signal {r.summary()}",
)


# ---- health ---------------------------------------------------------------------------------


def _health_waiting(r: CheckResult) -> str:
    """`web2: /healthz answers 500`: the host, the path, and what it said."""
    parts = urlsplit(r.query)
    path = parts.path or "/"
    got = f"answers {r.status}" if r.status is not None else "does not answer"
    return f"{r.host}: {path} {got}" if r.host else f"{parts.netloc}{path} {got}"


def _health_wait_line(said: list[str], so_far: str) -> str:
    more = f" (+{len(said) - 3} more)" if len(said) > 3 else ""
    return f"{'; '.join(said[:3])}{more} — retrying, {so_far}"


HEALTH = Words(
    title="Health checks",
    line=lambda r: [f"\n{_mark(r)} {r.name}: {r.reason}"],
    bad=lambda r: f"{r.query}: {r.reason}",
    failure=lambda r: f"health: {r.name} {r.reason}",
    good=lambda n: f"health {n}/{n}",
    status="health",
    waiting=_health_waiting,
    wait_line=_health_wait_line,
)


# ---- logs -----------------------------------------------------------------------------------


def _logs_line(r: CheckResult) -> Parts:
    if r.value is None:
        return [f"\n❌ {r.host}: {r.reason}"]
    if r.lines:
        shown = "\n".join(line[:300] for line in r.lines[:SHOWN_MATCHES])
        more = len(r.lines) - SHOWN_MATCHES
        return [f"\n❌ {r.host}: {len(r.lines)} error line(s) since the restart",
                CodeBlock(shown), f"…and {more} more" if more > 0 else ""]  # fmt: skip
    note = f" ({r.note})" if r.note else ""
    return [f"\n✅ {r.host}: no errors in {r.checked or 0} line(s){note}"]


def _logs_said(r: CheckResult) -> str:
    """`3 error line(s)`, or why the logs could not be read."""
    return r.reason if r.value is None else f"{int(r.value)} error line(s)"


LOGS = Words(
    title="Logs since the restart",
    line=_logs_line,
    bad=lambda r: r.reason if r.value is None else f"{int(r.value)} error line(s) in logs",
    failure=lambda r: f"{r.name}: {_logs_said(r)}",
    good=lambda n: "logs clean",
)


# ---- smoke tests ----------------------------------------------------------------------------


def smoke_template(r: CheckResult) -> str:
    """The smoke test as the apps file has it: `smoke `pytest -q` on web1` -> pytest -q."""
    return r.name.removeprefix("smoke `").rpartition("` on ")[0]


SMOKE = Words(
    title="Smoke tests",
    line=lambda r: [
        f"\n{_mark(r)} `{smoke_template(r)}` on {r.host}" + (f": {r.reason}" if r.reason else "")
    ],
    bad=lambda r: f"smoke `{smoke_template(r)}` {r.reason}",
    failure=lambda r: f"smoke: `{smoke_template(r)}` on {r.host} {r.reason}",
    good=lambda n: f"smoke {n}/{n}",
)


OWN: dict[str, Words] = {"health": HEALTH, "logs": LOGS, "smoke": SMOKE}


def words(kind: str) -> Words:
    """The words of kind `kind`: its own, or those every check has."""
    return OWN.get(kind, SIGNALS)
