"""A host's own checks as it came back: the typed results, their facts, and what Verify reuses.

Redeploy checks each host as soon as that host is redeployed (`host_verify`): its health URLs
(those with a host placeholder) and its logs since its restart. The results are kept in the
incident's facts (`RedeployFacts.verified`), so they survive a worker's death. Verify then reads
them here (`reused`): a host whose checks passed after the same restart, to the same ref, at
most `REUSE_FOR` ago, is not checked again; its lines are shown once more, marked as read as
the host came back. A host that failed, or was not checked, is checked by Verify as before; a
Retry of Verify checks every host.

This module does not import `verify` (which imports it); `host_verify` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from bot.checks import CheckResult, Threshold, Verdict
from bot.checks.logs import NO_ERRORS
from bot.steps.context import StepContext
from bot.steps.signals import Group
from bot.workflow.facts import HostCheckFact, HostCheckFacts
from bot.workflow.messages import Emphasis
from bot.workflow.model import StepId
from runners.strategies import strategy

HOST_KINDS = ("health", "logs")  # the kinds a host is checked by as it comes back
KEPT_LINES = 20  # error lines kept in the facts per host
REUSE_FOR = 600.0  # seconds: a host's checks older than this are read again by Verify


@dataclass(frozen=True)
class HostCheck:
    """What one host's own checks found: each as the checks' typed result, with its thread line."""

    host: str
    results: tuple[CheckResult, ...]
    said: tuple[str, ...]  # one line per result, as Verify words it

    @property
    def passed(self) -> bool:
        """The host's verdict: every check passed (inconclusive is not a pass)."""
        return bool(self.results) and all(r.passed for r in self.results)

    def facts(self, ref: str, restart_at: str) -> HostCheckFacts:
        checks = [_fact(r, said) for r, said in zip(self.results, self.said, strict=True)]
        at = datetime.now(UTC).isoformat()
        return HostCheckFacts(ref=ref, restart_at=restart_at, at=at, checks=checks)

    def summary(self) -> str:
        """`health 2/2, logs clean`, or what failed."""
        health = [r for r in self.results if r.provider == "health"]
        bad = [r for r in self.results if not r.passed]
        if bad:
            return "; ".join(f"{r.name}: {r.reason or r.verdict.value}" for r in bad)
        said = [f"health {len(health)}/{len(health)}"] if health else []
        return ", ".join([*said, "logs clean"])


def _fact(r: CheckResult, said: str) -> HostCheckFact:
    kind: Literal["health", "logs"] = "health" if r.provider == "health" else "logs"
    return HostCheckFact(kind=kind, name=r.name, verdict=r.verdict.value, value=r.value,
                         query=r.query, reason=r.reason, status=r.status,
                         lines=list(r.lines[:KEPT_LINES]), said=said)  # fmt: skip


def result_of(f: HostCheckFact, host: str) -> CheckResult:
    """The typed result a kept fact stands for (as `health.probe_result`/`logs.scan_result`)."""
    health = f.kind == "health"
    return CheckResult(f.name, Verdict(f.verdict), f.value, Threshold() if health else NO_ERRORS,
                       f.query, f.kind, "ms" if health else "error line(s)", reason=f.reason,
                       host=host, status=f.status, lines=tuple(f.lines))  # fmt: skip


@dataclass(frozen=True)
class Early:
    """The hosts Verify need not check again, and their results (health and logs)."""

    results: tuple[CheckResult, ...] = ()
    hosts: frozenset[str] = frozenset()

    def fresh(self, host: str | None) -> bool:
        """True when Verify checks this host (None: an app-wide URL, always checked)."""
        return host is None or host not in self.hosts

    def of(self, kind: str) -> list[CheckResult]:
        return [r for r in self.results if r.provider == kind]

    def without(self, group: Group) -> Group:
        """`group` without the checks of the hosts not checked again (a host's own kinds only:
        its health URLs and its logs; an app-wide URL has no host and is always read)."""
        if group.name not in HOST_KINDS or not self.hosts:
            return group
        keep = [c for c in group.checks if self.fresh(getattr(c, "host", None))]
        return Group(group.kind, keep, group.refused)


def passing(ctx: StepContext, host: str) -> HostCheckFacts | None:
    """The host's checks as it came back, if they passed after its last restart to this ref."""
    facts = ctx.facts.redeploy
    kept = facts.verified.get(host)
    if kept is None or not kept.passed or host not in facts.redeployed_hosts:
        return None
    if kept.ref != facts.ref or kept.restart_at != facts.restart_at.get(host, ""):
        return None
    try:
        age = (datetime.now(UTC) - datetime.fromisoformat(kept.at)).total_seconds()
    except ValueError:
        return None
    return kept if age <= REUSE_FOR else None  # long ago (a Retry much later): read again


async def reused(ctx: StepContext) -> Early:
    """What Verify takes from Redeploy's checks (`Early()` on a Retry: it checks everything),
    its lines said in the thread once more, marked as read as each host came back."""
    if ctx.incident.step(StepId.VERIFY).attempts > 1:
        return Early()
    hosts = strategy(ctx.app.deploy.strategy).deploy_hosts(ctx.app)
    kept = {h.name: k for h in hosts if (k := passing(ctx, h.name)) is not None}
    if not kept:
        return Early()
    await ctx.say(Emphasis("Checked as each host came back"), "\n" + "\n".join(_lines(kept)))
    results = [result_of(c, host) for host, k in kept.items() for c in k.checks]
    return Early(tuple(results), frozenset(kept))


def _lines(kept: dict[str, HostCheckFacts]) -> Sequence[str]:
    out: list[str] = []
    for host, k in kept.items():
        when = _clock(k.at)
        out += [f"{c.said} — read as {host} came back{when}" for c in k.checks]
    return out


def _clock(at: str) -> str:
    try:
        return f", {datetime.fromisoformat(at).astimezone(UTC):%H:%M:%S} UTC"
    except ValueError:
        return ""
