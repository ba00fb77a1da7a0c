"""Verify's host-scoped part for ONE host, run by Redeploy as soon as that host is redeployed.

The host's own checks of the kinds a host is checked by (`host_checks.HOST_KINDS`: its health
URLs, those with a host placeholder, and its logs since its restart), from the same registry and
with the same policy as Verify (`verify.settle`: health read again while the app starts, up to
`verify.health_timeout`; the logs read once). An app-wide URL, such as a load balancer's, is
Verify's. The result is typed (`host_checks.HostCheck`: `CheckResult`s and a verdict); Redeploy
keeps it in the facts and Verify reuses it (`host_checks.reused`).
"""

from __future__ import annotations

from dataclasses import replace

import aiohttp

from bot.checks import CheckResult, Threshold
from bot.checks.kinds import Kind
from bot.checks.result import inconclusive
from bot.config.apps_file import HostConfig
from bot.steps import signals
from bot.steps.context import StepContext
from bot.steps.host_checks import HOST_KINDS, HostCheck
from bot.steps.signal_reads import reading
from bot.steps.signals import Group
from bot.steps.verify import settle
from bot.steps.verify_words import words


async def check_host(ctx: StepContext, host: HostConfig) -> HostCheck:
    """The host's health URLs, waited for until healthy or the timeout, then its logs."""
    async with aiohttp.ClientSession() as session:
        found = signals.groups(ctx.app, reading(ctx, session=session), _of_a_host)
        mine = [_mine(g, host.name) for g in found]
        results = _refused(mine, host.name)
        judged = await settle(ctx, [g for g in mine if g.kind.settle and g.checks])
        results += [r for j in judged for r in j.results]
        once = [g for g in mine if not g.kind.settle and g.checks]
        read = await signals.read_groups(once, signals.deploy_time(ctx.incident.baseline))
        results += [r for rs in read for r in rs]
    return HostCheck(host.name, tuple(results), tuple(_line(r) for r in results))


def _of_a_host(kind: Kind) -> bool:
    return kind.name in HOST_KINDS


def _mine(group: Group, host: str) -> Group:
    keep = [c for c in group.checks if getattr(c, "host", None) == host]
    return Group(group.kind, keep, group.refused)


def _refused(mine: list[Group], host: str) -> list[CheckResult]:
    """A kind whose checks could not be built (a URL this host has no values for): not a pass."""
    out: list[CheckResult] = []
    for g in mine:
        if g.refused:
            why = inconclusive(f"{g.name} of {host}", Threshold(), "", g.refused, provider=g.name)
            out.append(replace(why, host=host))
    return out


def _line(r: CheckResult) -> str:
    """The result's line, as Verify says it under its kind's heading."""
    if r.provider == "logs":
        if r.value is None:
            return f"❌ {r.host}: {r.reason}"
        if not r.passed:
            return f"❌ {r.host}: {int(r.value)} error line(s) since the restart"
        note = f" ({r.note})" if r.note else ""
        return f"✅ {r.host}: no errors in {r.checked} line(s){note}"
    return f"{'✅' if r.passed else '❌'} {r.name}: {r.reason or r.verdict.value}"


def failures(checked: HostCheck) -> list[str]:
    """What failed, in Verify's words: `health: http://…/healthz (web2) HTTP 500: expected 200`."""
    return [words(r.provider).failure(r) for r in checked.results if not r.passed]


def error_lines(checked: HostCheck) -> list[str]:
    return [line for r in checked.results for line in r.lines[:5]]
