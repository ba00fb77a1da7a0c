"""Step 4: redeploy the previous version on every host, batch by batch; each host's own checks
(`host_verify`) start as soon as its redeploy ends, and a rolling batch is done only when its
hosts pass them."""

from __future__ import annotations

import asyncio
import re
import shlex
from datetime import UTC, datetime, timedelta

from bot.config.apps_file import AppConfig, HostConfig
from bot.ports import CommandResult
from bot.steps import host_verify
from bot.steps.context import Outcome, StepContext
from bot.steps.host_checks import HostCheck
from bot.steps.script import HostScript, Line, read
from bot.workflow.errors import HostError, StepError, UserFacingError
from bot.workflow.facts import RedeployFacts
from bot.workflow.model import Criterion, HostResult
from runners import releases, templates
from runners.strategies import strategy

# The host's own clock, not ours: log timestamps are written by the host, in its timezone.
CLOCK = "date +%Y-%m-%dT%H:%M:%S.%N%z"
_CLOCK_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?\D*?([+-])(\d{2}):?(\d{2})\s*$"
)


def parse_clock(text: str) -> tuple[datetime, int] | None:
    """`date` output as (UTC time, the host's UTC offset in seconds).

    busybox's `date` knows no %N, so the fraction may be missing or a literal `%N`."""
    match = _CLOCK_RE.search(text.strip())
    if not match:
        return None
    stamp, frac, sign, hh, mm = match.groups()
    offset = (int(hh) * 3600 + int(mm) * 60) * (1 if sign == "+" else -1)
    micro = int((frac or "0")[:6].ljust(6, "0"))
    local = datetime.fromisoformat(stamp).replace(microsecond=micro, tzinfo=UTC)
    return local - timedelta(seconds=offset), offset


async def host_clock(ctx: StepContext, host: HostConfig) -> tuple[datetime, int]:
    """(now in UTC, the host's UTC offset in seconds), as the host itself tells them."""
    result = await ctx.run(host, CLOCK, stream=False, timeout=30)
    parsed = parse_clock(result.output) if result.ok else None
    # Without the host's clock ours is the best guess; skew only blurs the log window.
    return parsed or (datetime.now(UTC), 0)


def _ref(ctx: StepContext) -> tuple[str, str]:
    target = ctx.incident.target
    if not target:
        raise StepError("no target version known", hint="The assess step sets it; Retry it.")
    return ctx.facts.code.hotfix_ref or target, target


def _expected_sha(ctx: StepContext) -> str:
    # A 'revert' hotfix is a new commit whose describe differs from the tag: its sha is the truth.
    return ctx.facts.code.hotfix_sha or ctx.facts.assess.target_sha


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def host_script(
    app: AppConfig, host: HostConfig, ref: str, target: str, *, warm: bool | None = None
) -> HostScript:
    """Every command the redeploy runs on one host, values filled in, in the order it runs
    them: declared once, here, for the real run and for the plan (`/rollback plan`).
    `warm` (the plan's reading of the host's kept releases) only words the plan's notes: the
    run reads the host itself.

    Raises UserFacingError when a value may not go into a command."""
    if app.deploy.releases:
        return _releases_script(app, host, ref, target, warm)

    def step(name: str, *, changes: bool = True, note: str = "") -> Line | None:
        command = templates.build(app, host, name, ref=ref, version=target)
        return Line(name, command, changes=changes, note=note) if command else None

    how = strategy(app.deploy.strategy)
    dep = how.dependency_file
    # The dependency file's blob id, read before and after the fetch: `install` runs only when
    # it changed. The reads are quiet and may fail (no such file yet).
    probe = f"git rev-parse {shlex.quote('HEAD:' + dep)} 2>/dev/null || true" if dep else None
    deps = templates.in_workdir(app, host, probe) if probe else None
    return HostScript.of(
        read("deps_before", deps, label="dependencies", timeout=60) if deps else None,
        step("fetch"),
        read("deps_after", deps, label="dependencies", timeout=60) if deps else None,
        step("install", note=f"only if {dep} changed" if dep else ""),
        *_restart_lines(app, host, ref, target),
    )


def _restart_lines(
    app: AppConfig, host: HostConfig, ref: str, target: str
) -> tuple[Line | None, ...]:
    def step(name: str) -> Line | None:
        command = templates.build(app, host, name, ref=ref, version=target)
        return Line(name, command, changes=name == "restart") if command else None

    how = strategy(app.deploy.strategy)
    head = templates.in_workdir(app, host, how.head_command) if how.head_command else None
    return (
        read("clock", CLOCK, timeout=30, note="the restart time, for the logs"),
        step("restart"),
        step("status"),
        step("version"),
        read("head", head, timeout=60, note="must be the rollback commit") if head else None,
    )


# The commands a host with the target kept does not run.
FULL_PATH = ("prepare", "fetch", "install", "mark")


def _releases_script(
    app: AppConfig, host: HostConfig, ref: str, target: str, warm: bool | None
) -> HostScript:
    """The releases layout: the kept release is read on the host first; the full path (a new
    `releases/<target>`, fetch, install, mark) runs only when it is not there, complete, at
    the expected commit. Then the switch, the restart, the checks, and the pruning."""
    base, keep = app.workdir(host), app.deploy.releases or 1
    where = releases.release_dir(base, target)
    cold = {None: "only if the target is not kept", True: "skipped: the target is kept here"}
    note = cold.get(warm, "the target is not kept here")
    how = strategy(app.deploy.strategy)

    def step(name: str) -> Line | None:
        command = templates.build(app, host, name, cwd=where, ref=ref, version=target)
        return Line(name, command, note=note) if command else None

    return HostScript.of(
        read("kept", releases.kept(base, target), label="kept release", timeout=30),
        Line("prepare", releases.prepare(base, target), note=note),
        step("fetch"),
        step("install"),
        Line("mark", releases.mark(base, target, how.head_command), note=note),
        Line("switch", releases.switch(base, target), note="`current` -> the release, atomically"),
        *_restart_lines(app, host, ref, target),
        Line("prune", releases.prune(base, keep), check=False, note=f"keeps the last {keep}"),
    )


class _Host:
    """The rollout of one host: its commands as one script, the first failure raised."""

    def __init__(self, ctx: StepContext, host: HostConfig, ref: str, target: str) -> None:
        self.ctx, self.host, self.ref, self.target = ctx, host, ref, target
        self.script = host_script(ctx.app, host, ref, target)
        self.kept = ""  # the commit of the kept release switched to ('': none)

    async def run(self) -> HostResult:
        ctx, name = self.ctx, self.host.name
        facts = ctx.facts.redeploy
        # Kept from the first attempt: after a failed install, a retry finds the new checkout
        # already in place and would otherwise think nothing changed.
        fingerprints = facts.dependency_fingerprint
        plan = self.script
        dep = strategy(ctx.app.deploy.strategy).dependency_file

        def output(results: list[CommandResult | None], what: str) -> str | None:
            result = plan.result(results, what)
            return result.output.strip() if result is not None and result.ok else None

        async def decide(i: int, results: list[CommandResult | None]) -> bool:
            what = plan.names[i]
            if what in FULL_PATH and "kept" in plan:
                return not await warm(results, first=what == "prepare")
            if what == "deps_before":
                return name not in fingerprints
            if what == "fetch" and "deps_before" in plan:
                fingerprints.setdefault(name, output(results, "deps_before") or "")
            unchanged = fingerprints.get(name, "") == (output(results, "deps_after") or "")
            if what == "install" and "deps_after" in plan and unchanged:
                await ctx.out(name, f"{dep} unchanged: install skipped")
                return False
            if what == "head":
                return bool(self.kept or _expected_sha(ctx))
            return True

        async def warm(results: list[CommandResult | None], *, first: bool) -> bool:
            # Read on the host just now, not at plan time: a release deleted by hand since, or
            # one whose install failed (no marker), takes the full path.
            marker = output(results, "kept") or ""
            hit = releases.holds(marker, _expected_sha(ctx), ctx.facts.assess.target_sha)
            # The kept release holds the target's own commit when the hotfix is a revert (the
            # same files): that commit is what the host then runs.
            self.kept = marker.strip() if hit else ""
            if first:
                said = (
                    f"{self.target} is kept here: switching to it"
                    if hit
                    else (f"{self.target} is not kept here: full deploy into a new release")
                )
                await ctx.out(name, said)
            return hit

        results = await ctx.run_script(self.host, plan.sent(), decide=decide)
        clock = output(results, "clock")
        now, offset = (parse_clock(clock) if clock else None) or (datetime.now(UTC), 0)
        if plan.result(results, "clock") is not None:
            facts.restart_at[name] = now.isoformat()
            facts.host_utc_offset[name] = offset
        self.check(results)
        reported = _last_line(output(results, "version") or "")
        facts.versions_by_host[name] = reported
        head = _last_line(output(results, "head") or "")
        how = strategy(ctx.app.deploy.strategy)
        problem = how.off_target(reported, head, self.kept or _expected_sha(ctx), self.target)
        if problem:
            raise HostError(
                problem,
                host=name,
                hint="The checkout did not move to the rollback ref. Retry, or Abort.",
            )
        return HostResult(host=name, ok=True, summary=f"on {self.target} ({reported})")

    def check(self, results: list[CommandResult | None]) -> None:
        """The first command that failed, as a HostError; also a script cut short."""
        for line, result in zip(self.script, results, strict=True):
            what = line.name
            if not line.check:
                continue
            if result is None:
                if what == "install" or what in FULL_PATH:  # skipped: unchanged, or kept
                    continue
                raise HostError(
                    f"the commands stopped before `{what}`",
                    host=self.host.name,
                    hint="The connection may have dropped. Retry, or Abort.",
                )
            result.check(f"`{what}`")


def batches(hosts: list[HostConfig], size: int | None) -> list[list[HostConfig]]:
    step = size or len(hosts) or 1
    return [hosts[i : i + step] for i in range(0, len(hosts), step)]


async def run(ctx: StepContext) -> Outcome:
    ref, target = _ref(ctx)
    if ctx.facts.redeploy.ref != ref:
        # A different rollback ref means nothing done so far counts.
        ctx.facts.redeploy = RedeployFacts(ref=ref)
    facts = ctx.facts.redeploy
    done = facts.redeployed_hosts
    hosts = strategy(ctx.app.deploy.strategy).deploy_hosts(ctx.app)
    todo = [h for h in hosts if h.name not in done]
    if done:
        await ctx.say(
            f"Already on {target}: {', '.join(done)}. Redeploying "
            f"{', '.join(h.name for h in todo) or 'no other host'}."
        )
    rolling = ctx.app.deploy.rolling is not None
    plan = batches(todo, ctx.app.deploy.rolling)
    limit = asyncio.Semaphore(ctx.app.deploy.concurrency)
    results: dict[str, HostResult] = {}

    async def one(host: HostConfig) -> tuple[HostResult, HostCheck] | HostError:
        async with limit:
            try:
                result = await _Host(ctx, host, ref, target).run()
            except HostError as exc:
                return exc
            except UserFacingError as exc:  # a value refused by the command templates
                return HostError(str(exc), host=host.name, hint="Fix the apps file or the ref.")
            # Verify's part for this host starts as soon as it is back, in its slot; kept in
            # the facts for Verify, which then checks only what is not this host's own.
            checked = await host_verify.check_host(ctx, host)
            facts.verified[host.name] = checked.facts(ref, facts.restart_at.get(host.name, ""))
            return result, checked

    for number, batch in enumerate(plan, 1):
        if len(plan) > 1:
            names = ", ".join(h.name for h in batch)
            await ctx.say(f"Batch {number}/{len(plan)}: {names}")
        await ctx.heartbeat()
        # Every host of the batch ends its commands before anything is raised: a host left
        # mid-restart by an error elsewhere would be worse than either version.
        outcomes = await asyncio.gather(*(one(h) for h in batch), return_exceptions=True)
        failed: list[HostError] = []
        unhealthy: list[str] = []  # redeployed, but their own checks failed
        unexpected: list[BaseException] = []
        for host, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, HostError):
                unexpected.append(outcome)
                continue
            res: HostResult | HostError
            if isinstance(outcome, HostError):
                res = outcome
            else:
                res = await _checked(ctx, *outcome, stop=rolling)
                if isinstance(res, HostError):
                    unhealthy.append(host.name)
            if isinstance(res, HostError):
                failed.append(res)
                results[host.name] = HostResult(
                    host=host.name, ok=False, summary=res.what, detail=res.detail
                )
            else:
                results[host.name] = res
                done.append(host.name)
        if unexpected:
            raise unexpected[0]
        if failed:
            later = [h.name for b in plan[number:] for h in b]
            # `redeployed_hosts` stays in the facts, which the step runner keeps on failure.
            raise _rollout_error(failed, done, later, results, (target, unhealthy))
    summary = f"{len(hosts)} host(s) on {target} (ref {ref})"
    return Outcome(
        summary=summary,
        hosts=results,
        facts=facts,
        criteria={Criterion.DEPLOYED: True},
    )


async def _checked(
    ctx: StepContext, result: HostResult, checked: HostCheck, *, stop: bool
) -> HostResult | HostError:
    """A redeployed host with its own checks' verdict. Rolling (`stop`), a host whose checks
    failed stops the rollout: it is not counted as done, so a Retry redeploys it again. Else
    the other hosts go on, and Verify checks it again."""
    name = result.host
    if checked.passed:
        said = f"{result.summary}; checked as it came back: {checked.summary()}"
        return result.model_copy(update={"summary": said})
    why = "; ".join(host_verify.failures(checked)[:3])
    if stop:
        return HostError(
            f"{name} failed its checks after its redeploy: {why}",
            host=name,
            detail="\n".join(host_verify.error_lines(checked)),
        )
    await ctx.say(f"⚠️ {name} is redeployed, but its checks failed: {why}. Verify checks it again.")
    return result.model_copy(update={"summary": f"{result.summary}; checks failed: {why}"})


def _rollout_error(
    failed: list[HostError],
    done: list[str],
    later: list[str],
    results: dict[str, HostResult],
    unhealthy: tuple[str, list[str]],
) -> StepError:
    first = failed[0]
    others = [f"{e.host}: {e.what}" for e in failed[1:]]
    parts = [f"Already on the target: {', '.join(done) if done else 'none'}."]
    if later:
        parts.append(f"Not started: {', '.join(later)}.")
    if others:
        parts.append("Also failed: " + "; ".join(others) + ".")
    target, hosts = unhealthy
    if hosts:
        parts.append(
            f"On {target} but failing its checks: {', '.join(hosts)}; the next batches wait "
            "for it. Retry redeploys and checks it again, then the hosts not on the target; "
            "Abort stops here."
        )
    else:
        parts.append("Retry redeploys only the hosts not on the target; Abort stops here.")
    err = HostError(first.what, host=first.host, hint=" ".join(parts), detail=first.detail)
    err.hosts = dict(results)
    return err
