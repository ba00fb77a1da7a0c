"""Step 5 of the runbook, Verify: health URLs, logs since the restart, smoke tests.

Only log lines written since the restart count, so the broken version's errors do not fail the
version that replaced it. The `{since}` placeholder of the `logs` command is the restart time
as the host's own clock gave it: host-local `YYYY-MM-DD HH:MM:SS` for systemd (what
`journalctl --since` reads everywhere), RFC 3339 in UTC for the rest (`docker compose logs
--since`). On top of that, lines that start with an ISO 8601 timestamp are filtered by it, which
covers a `logs` command without `{since}`, such as `tail -n 200 app.log` (`bot.checks.logs`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from bot.checks import CheckResult, health, logs, smoke
from bot.checks.logs import LogScan
from bot.checks.result import inconclusive
from bot.config.apps_file import AppConfig, HostConfig
from bot.ports import CommandResult, ScriptCommand
from bot.steps.context import Outcome, StepContext
from bot.steps.host_checks import Early, reused
from bot.steps.signal_reads import verify_signals
from bot.steps.signals import smoke_command, smoke_host
from bot.workflow.baseline import compare
from bot.workflow.errors import StepError, UserFacingError
from bot.workflow.messages import Block, CodeBlock, Emphasis, Inline
from bot.workflow.model import Criterion, HostResult
from runners import templates
from runners.strategies import strategy

SHOWN_MATCHES = 20
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ---- logs -----------------------------------------------------------------------------------


def since_value(name: str, at: datetime, utc_offset: int) -> str:
    """`{since}` for the logs command of strategy `name` (see the module's doc)."""
    return strategy(name).since(at, utc_offset)


async def scan_logs(
    ctx: StepContext, host: HostConfig, since: datetime, utc_offset: int
) -> LogScan:
    cmd = logs_read(ctx.app, host, since, utc_offset)
    if isinstance(cmd, LogScan):
        return cmd
    # Not streamed: the thread gets the matching lines, not the whole log.
    result = await ctx.run(host, cmd, stream=False, timeout=logs_timeout(ctx.app))
    return logs_scan(ctx.app, host, result, since, utc_offset)


def logs_read(app: AppConfig, host: HostConfig, since: datetime, utc_offset: int) -> str | LogScan:
    """The command that reads `host`'s logs since `since`, or the scan saying why there is none."""
    try:
        cmd = logs_command(app, host, since, utc_offset)
    except UserFacingError as exc:
        return LogScan(host.name, error=str(exc))
    if cmd is None:
        return LogScan(host.name, error="no `logs` command configured (deploy.commands.logs)")
    return cmd


def logs_timeout(app: AppConfig) -> float:
    return min(app.deploy.timeout, 60)


def logs_scan(
    app: AppConfig, host: HostConfig, result: CommandResult, since: datetime, utc_offset: int
) -> LogScan:
    """What a logs read found: the error lines among those written since `since`."""
    windowed = "{since}" in templates.template(app, "logs")
    return logs.scan(host.name, result, since, utc_offset, app.logs.error_pattern, windowed)


def _restart_time(ctx: StepContext, host: str) -> tuple[datetime, int] | None:
    at = ctx.facts.redeploy.restart_at.get(host)
    if not at:
        return None
    return datetime.fromisoformat(at), ctx.facts.redeploy.host_utc_offset.get(host, 0)


def _window_start(ctx: StepContext, host: HostConfig) -> tuple[datetime, int]:
    known = _restart_time(ctx, host.name)
    if known is not None:
        return known
    # No restart recorded (the version was put there by other means): every line the logs
    # command returns counts, as nothing tells the old version's lines from the new one's.
    return EPOCH, 0


# ---- verify ---------------------------------------------------------------------------------


@dataclass
class _Findings:
    """What Verify read, each check's reading as the checks' typed result (`bot.checks`)."""

    results: list[CheckResult] = field(default_factory=list)  # health, logs, smoke
    health_error: str = ""
    smoke_error: str = ""
    matches: list[str] = field(default_factory=list)  # the error lines, for the error's detail

    def of(self, kind: str) -> list[CheckResult]:
        return [r for r in self.results if r.provider == kind]

    def health_ok(self) -> bool:
        return not self.health_error and all(r.passed for r in self.of("health"))

    def logs_ok(self) -> bool:
        return bool(self.of("logs")) and all(r.passed for r in self.of("logs"))

    def smoke_ok(self) -> bool:
        return not self.smoke_error and all(r.passed for r in self.of("smoke"))


async def _health(ctx: StepContext, found: _Findings, early: Early) -> None:
    try:
        todo = [t for t in health.targets(ctx.app) if early.fresh(t.host)]
    except ValueError as exc:
        found.health_error = str(exc)
        return
    if not todo and not early.of("health"):
        found.health_error = "no health checks configured (health:)"
        return
    cfg = ctx.app.verify

    async def retrying(failing: list[health.Probe], elapsed: float) -> None:
        # Whole multiples of 5 s: the line changes (and is redrawn) at most every 5 s.
        so_far = f"{int(elapsed // 5 * 5)} s of {cfg.health_timeout:.0f} s"
        said = "; ".join(_waiting_on(p) for p in failing[:3])
        more = f" (+{len(failing) - 3} more)" if len(failing) > 3 else ""
        await ctx.waiting("health", f"{said}{more} — retrying, {so_far}")

    try:
        probes = await health.wait_healthy(
            todo, within=cfg.health_timeout, every=cfg.health_interval, on_retry=retrying
        )
    finally:
        await ctx.waiting("health", None)
    found.results += [health.probe_result(p) for p in probes]
    lines = [f"{'✅' if p.ok else '❌'} {_label(p)}: {p.describe()}" for p in probes]
    every = found.of("health")  # with those read as each host came back
    ok = [r.value for r in every if r.passed and r.value is not None]
    p95 = health.percentile(ok, 95)
    availability = round(100 * len(ok) / len(every), 2) if every else None
    if vs := compare(ctx.incident.baseline, p95, availability):
        ctx.facts.verify.vs_baseline = vs
        lines.append(f"Compared with before the bad deploy: {vs}")
    if lines:  # none: every URL is a host's own, read as it came back
        await ctx.say(Emphasis("Health checks"), "\n" + "\n".join(lines))


def _waiting_on(p: health.Probe) -> str:
    """`web2: /healthz answers 500`: the host, the path, and what it said."""
    parts = urlsplit(p.url)
    path = parts.path or "/"
    got = f"answers {p.status}" if p.status is not None else "does not answer"
    return f"{p.host}: {path} {got}" if p.host else f"{parts.netloc}{path} {got}"


def _label(p: health.Probe) -> str:
    return f"{p.url} ({p.host})" if p.host else p.url


async def _logs(ctx: StepContext, found: _Findings, early: Early) -> None:
    async def one(host: HostConfig) -> LogScan:
        start, offset = _window_start(ctx, host)
        return await scan_logs(ctx, host, start, offset)

    every = strategy(ctx.app.deploy.strategy).deploy_hosts(ctx.app)
    if not (hosts := [h for h in every if early.fresh(h.name)]):
        return
    scans = list(await asyncio.gather(*(one(h) for h in hosts)))
    found.results += [logs.scan_result(scan, "logs") for scan in scans]
    found.matches = [m for scan in scans for m in scan.matches[:5]]
    out: list[Block | Inline] = [Emphasis("Logs since the restart")]
    for scan in scans:
        if scan.error:
            out.append(f"\n❌ {scan.host}: {scan.error}")
        elif scan.matches:
            out.append(f"\n❌ {scan.host}: {len(scan.matches)} error line(s) since the restart")
            shown = "\n".join(line[:300] for line in scan.matches[:SHOWN_MATCHES])
            out.append(CodeBlock(shown))
            more = len(scan.matches) - SHOWN_MATCHES
            out.append(f"…and {more} more" if more > 0 else "")
        else:
            note = "" if scan.windowed else " (no timestamps, no `{since}`: all lines checked)"
            out.append(f"\n✅ {scan.host}: no errors in {scan.checked} line(s){note}")
    await ctx.say(*out)


def logs_command(app: AppConfig, host: HostConfig, since: datetime, utc_offset: int) -> str | None:
    since_text = since_value(app.deploy.strategy, since, utc_offset)
    return templates.build(app, host, "logs", since=since_text)


async def _smoke(ctx: StepContext, found: _Findings) -> None:
    if not ctx.app.smoke:
        found.smoke_error = "no smoke tests configured (smoke:)"
        return
    host = smoke_host(ctx.app)
    for template, result in await _run_smoke(ctx, host):
        if isinstance(result, Exception):
            why = inconclusive(f"smoke `{template}` on {host.name}", smoke.EXIT_ZERO, template,
                               str(result), provider="smoke")  # fmt: skip
            found.results.append(replace(why, host=host.name))
            continue
        found.results.append(smoke.smoke_result(template, host.name, result.command,
                                                result.exit_status))  # fmt: skip
    lines = [
        f"{'✅' if r.passed else '❌'} `{_template(r)}` on {r.host}"
        + (f": {r.reason}" if r.reason else "")
        for r in found.of("smoke")
    ]
    await ctx.say(Emphasis("Smoke tests"), "\n" + "\n".join(lines))


def _template(r: CheckResult) -> str:
    """The smoke test as the apps file has it: `smoke `pytest -q` on web1` -> pytest -q."""
    return r.name.removeprefix("smoke `").rpartition("` on ")[0]


async def _run_smoke(
    ctx: StepContext, host: HostConfig
) -> list[tuple[str, CommandResult | Exception]]:
    """Each smoke test's result (or why it could not be written), run in turn as one script:
    one SSH session for them all. Each runs whatever the one before it did, as before."""
    written: list[tuple[str, str | Exception]] = []
    for template in ctx.app.smoke:
        try:
            written.append((template, smoke_command(ctx.app, host, template)))
        except (UserFacingError, ValueError, IndexError) as exc:
            written.append((template, exc))
    commands = [cmd for _, cmd in written if isinstance(cmd, str)]
    script = [ScriptCommand(c, check=False) for c in commands]
    ran = iter(await ctx.run_script(host, script) if script else [])
    out: list[tuple[str, CommandResult | Exception]] = []
    for template, cmd in written:
        if not isinstance(cmd, str):
            out.append((template, cmd))
            continue
        # None: not run, as one before it went past its timeout and the script was killed.
        result = next(ran) or await ctx.run(host, cmd)
        out.append((template, result))
    return out


def _logs_said(r: CheckResult) -> str:
    """`3 error line(s)`, or why the logs could not be read."""
    return r.reason if r.value is None else f"{int(r.value)} error line(s)"


# Each kind's words, from its typed result: (on its host's line when it fails, in Verify's
# error when it fails, on its host's line when all of its kind pass there).
_BAD: dict[str, Callable[[CheckResult], str]] = {
    "health": lambda r: f"{r.query}: {r.reason}",
    "logs": lambda r: r.reason if r.value is None else f"{int(r.value)} error line(s) in logs",
    "smoke": lambda r: f"smoke `{_template(r)}` {r.reason}",
}
_FAILURE: dict[str, Callable[[CheckResult], str]] = {
    "health": lambda r: f"health: {r.name} {r.reason}",
    "logs": lambda r: f"{r.name}: {_logs_said(r)}",
    "smoke": lambda r: f"smoke: `{_template(r)}` on {r.host} {r.reason}",
}
_GOOD: dict[str, Callable[[int], str]] = {
    "health": lambda n: f"health {n}/{n}",
    "logs": lambda n: "logs clean",
    "smoke": lambda n: f"smoke {n}/{n}",
}


def _per_host(ctx: StepContext, found: _Findings) -> dict[str, HostResult]:
    out: dict[str, HostResult] = {}
    for host in ctx.app.hosts:
        here = [r for r in found.results if r.host == host.name]
        bad = [_BAD[r.provider](r) for r in here if not r.passed]
        good = [
            _GOOD[kind](n) for kind in _GOOD if (n := len([r for r in here if r.provider == kind]))
        ]
        summary = "; ".join(bad) if bad else ", ".join(good) or "nothing to check here"
        out[host.name] = HostResult(host=host.name, ok=not bad, summary=summary)
    return out


def _failures(found: _Findings) -> list[str]:
    out: list[str] = []
    if found.health_error:
        out.append(f"health: {found.health_error}")
    out += [_FAILURE[r.provider](r) for r in found.of("health") if not r.passed]
    out += [_FAILURE[r.provider](r) for r in found.of("logs") if not r.passed]
    if found.smoke_error:
        out.append(f"smoke: {found.smoke_error}")
    out += [_FAILURE[r.provider](r) for r in found.of("smoke") if not r.passed]
    return out


async def run(ctx: StepContext) -> Outcome:
    # Each host's own health URLs and logs were checked as it came back (Redeploy,
    # `host_verify`): passing ones are reused, and only the rest is checked here.
    early = await reused(ctx)
    found = _Findings(results=list(early.results))
    await _health(ctx, found, early)
    await ctx.heartbeat()
    await _logs(ctx, found, early)
    await _smoke(ctx, found)
    signals_failing = await verify_signals(ctx)  # the team's metrics and resources, judged
    criteria = {
        Criterion.HEALTH: found.health_ok(),
        Criterion.LOGS: found.logs_ok(),
        Criterion.SMOKE: found.smoke_ok(),
    }
    hosts = _per_host(ctx, found)
    ctx.facts.verify.checks = {c.name.lower(): ok for c, ok in criteria.items()}
    failures = signals_failing + _failures(found)  # the team's own signals first
    if failures:
        detail = "\n".join(found.matches)
        err = StepError(
            "Verification failed: " + "; ".join(failures[:6]),
            hint="Details are above. Fix the cause, then Retry (it re-checks everything) — "
            "or Abort.",
            detail=detail,
        )
        err.hosts = hosts
        err.criteria = dict(criteria)
        raise err
    probes = len(found.of("health"))
    smokes = len(found.of("smoke"))
    return Outcome(
        summary=f"{probes} health check(s) passing, no errors in logs, {smokes} smoke test(s) ok",
        hosts=hosts,
        facts=ctx.facts.verify,
        criteria=criteria,
    )
