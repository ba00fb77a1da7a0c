"""Verify's host-scoped part for ONE host, run by Redeploy as soon as that host is redeployed.

The host's own health URLs (those with a host placeholder: `health.targets` of that host; an
app-wide URL, such as a load balancer's, is Verify's) are waited for with Verify's retry policy
(`verify.health_timeout`, `verify.health_interval`), and its logs since its restart are scanned
with Verify's own helpers. The result is typed (`host_checks.HostCheck`: `CheckResult`s and a
verdict); Redeploy keeps it in the facts and Verify reuses it (`host_checks.reused`).
"""

from __future__ import annotations

from dataclasses import replace

from bot.checks import CheckResult, Threshold, health, logs
from bot.checks.result import inconclusive
from bot.config.apps_file import HostConfig
from bot.steps.context import StepContext
from bot.steps.host_checks import HostCheck
from bot.steps.verify import _FAILURE, _label, _waiting_on, _window_start, scan_logs


async def check_host(ctx: StepContext, host: HostConfig) -> HostCheck:
    """The host's health URLs, waited for until healthy or the timeout, then its logs."""
    results, said = await _health(ctx, host)
    start, offset = _window_start(ctx, host)
    scan = await scan_logs(ctx, host, start, offset)
    results.append(logs.scan_result(scan, "logs"))
    said.append(_logs_line(scan))
    return HostCheck(host.name, tuple(results), tuple(said))


async def _health(ctx: StepContext, host: HostConfig) -> tuple[list[CheckResult], list[str]]:
    try:
        todo = [t for t in health.targets(ctx.app) if t.host == host.name]
    except ValueError as exc:  # a URL this host has no vars for
        why = inconclusive(f"health of {host.name}", Threshold(), "", str(exc), provider="health")
        return [replace(why, host=host.name)], [f"❌ {host.name}: {exc}"]
    if not todo:
        return [], []  # no URL of its own: Verify probes the app-wide ones
    cfg = ctx.app.verify
    key = f"health {host.name}"

    async def retrying(failing: list[health.Probe], elapsed: float) -> None:
        so_far = f"{int(elapsed // 5 * 5)} s of {cfg.health_timeout:.0f} s"
        said = "; ".join(_waiting_on(p) for p in failing[:3])
        await ctx.waiting(key, f"{said} — retrying, {so_far}")

    try:
        probes = await health.wait_healthy(
            todo, within=cfg.health_timeout, every=cfg.health_interval, on_retry=retrying
        )
    finally:
        await ctx.waiting(key, None)
    lines = [f"{'✅' if p.ok else '❌'} {_label(p)}: {p.describe()}" for p in probes]
    return [health.probe_result(p) for p in probes], lines


def _logs_line(scan: logs.LogScan) -> str:
    """The host's line under Verify's "Logs since the restart"."""
    if scan.error:
        return f"❌ {scan.host}: {scan.error}"
    if scan.matches:
        return f"❌ {scan.host}: {len(scan.matches)} error line(s) since the restart"
    note = "" if scan.windowed else " (no timestamps, no `{since}`: all lines checked)"
    return f"✅ {scan.host}: no errors in {scan.checked} line(s){note}"


def failures(checked: HostCheck) -> list[str]:
    """What failed, in Verify's words: `health: http://…/healthz (web2) HTTP 500: expected 200`."""
    return [_FAILURE[r.provider](r) for r in checked.results if not r.passed]


def error_lines(checked: HostCheck) -> list[str]:
    return [line for r in checked.results for line in r.lines[:5]]
