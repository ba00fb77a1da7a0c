"""Fan-out: the redeploy commands on N sshd hosts, Rewind's runner against plain OpenSSH.

Rewind: the redeploy step body (`bot/steps/redeploy.py`) on the SSH runner, one script per host,
each command fenced against a real Redis (the lock and the incident, as the step runner does).
Baseline: `ssh host 'the same commands' &` for every host, then `wait` (ControlMaster off, host
keys checked), as an engineer would type it. Both start from every host on v1.5.0 and end with
every host on v1.4.2, restarted; both pay their SSH handshakes. The redeploy step checks each
host as it comes back (here its logs read: the lab has no health URLs), in a session of its own
after the script; the baseline runs that read too, at the end of the same `ssh`.
"""

from __future__ import annotations

import asyncio
import shlex
import statistics
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.lab import Lab, lab, private_redis
from bot.config.apps_file import AppsFile, parse_apps
from bot.ports import CommandResult, Decide, HostRunner, LineSink, ScriptCommand
from bot.steps import redeploy
from bot.store.redis_store import RedisStore, connect
from bot.workflow.model import Incident, StepId
from runners.ssh import SshRunner
from tests.fakes import RecordingNotifier, make_ctx, make_incident

SIZES = (1, 5, 20, 50)


@dataclass
class Row:
    hosts: int
    rewind: float
    baseline: float
    sessions: int  # SSH sessions Rewind opened per host

    @property
    def ratio(self) -> float:
        return self.rewind / self.baseline


class Recording(SshRunner):
    """The SSH runner, keeping the commands that really ran on each host (for the baseline)."""

    ran: dict[str, list[str]]
    scripts: int = 0

    async def run_script(
        self,
        host: str,
        commands: Sequence[ScriptCommand],
        *,
        timeout: float | None = None,
        decide: Decide | None = None,
        on_line: LineSink | None = None,
    ) -> list[CommandResult | None]:
        self.scripts += 1
        results = await super().run_script(
            host, commands, timeout=timeout, decide=decide, on_line=on_line
        )
        self.ran.setdefault(host, []).extend(r.command for r in results if r is not None)
        return results

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        # The host's own checks after its script (its logs read): the baseline runs them too.
        result = await super().run(host, command, timeout=timeout, on_line=on_line)
        self.ran.setdefault(host, []).append(command)
        return result


def app_config(the_lab: Lab, count: int) -> dict[str, Any]:
    cfg = the_lab.env.app_config()
    cfg["hosts"] = cfg["hosts"][:count]
    cfg.pop("health", None)
    return cfg


async def rewind_run(the_lab: Lab, count: int, redis_url: str) -> tuple[float, Recording]:
    apps = parse_apps({"apps": {"myapp": app_config(the_lab, count)}}, "bench")
    runner = Recording(apps.apps["myapp"])
    runner.ran = {}
    took = await timed_redeploy(apps, runner, redis_url, make_incident(id=uuid.uuid4().hex[:6]))
    return took, runner


async def timed_redeploy(
    apps: AppsFile, runner: HostRunner, redis_url: str, incident: Incident
) -> float:
    """The redeploy step alone, fenced through Redis before every command as a worker fences
    it; how long it took. Every host must end on the target."""
    store = RedisStore(connect(redis_url))
    token = await store.acquire_lock("myapp", incident.id)
    assert isinstance(token, int)
    incident.lock_token = token
    await store.create(incident)

    async def fence() -> None:  # what StepRunner._fence asks Redis before every command
        assert await store.holds_lock("myapp", incident.id, token)
        assert await store.load(incident.id) is not None

    ctx = make_ctx(apps, runner, step=StepId.REDEPLOY, incident=incident,
                   notifier=RecordingNotifier())  # fmt: skip
    ctx.fence = fence
    began = time.perf_counter()
    try:
        outcome = await redeploy.run(ctx)
    finally:
        await runner.close()
    took = time.perf_counter() - began
    await store.release_lock("myapp", incident.id)
    await store.r.aclose()
    count = len(apps.apps["myapp"].hosts)
    assert len(outcome.hosts) == count and all(h.ok for h in outcome.hosts.values())
    return took


def baseline_run(the_lab: Lab, ran: dict[str, list[str]]) -> float:
    """Plain ssh to every host at once, `&` + `wait`, running the commands Rewind ran."""
    lines = ["set -u", "fail=0"]
    for host in the_lab.hosts:
        if host.name not in ran:
            continue
        remote = " && ".join(f"( {cmd} )" for cmd in ran[host.name])
        argv = " ".join(shlex.quote(a) for a in [*the_lab.ssh_argv(host), remote])
        log = shlex.quote(str(the_lab.tmp / f"baseline-{host.name}.log"))
        lines.append(f"{argv} > {log} 2>&1 &")
    lines.append('for job in $(jobs -p); do wait "$job" || fail=1; done')
    lines.append('exit "$fail"')
    script = "\n".join(lines)
    began = time.perf_counter()
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"baseline ssh failed: {proc.stdout}{proc.stderr}")
    return took


def check_on_target(the_lab: Lab, count: int) -> None:
    for host in the_lab.hosts[:count]:
        got = host.run("git describe --tags --always").strip()
        if got != "v1.4.2":
            raise RuntimeError(f"{host.name} is on {got} after the run, not v1.4.2")


async def measure(sizes: Sequence[int] = SIZES, reps: int = 2) -> list[Row]:
    rows: list[Row] = []
    with private_redis() as redis_url, lab(max(sizes)) as the_lab:
        full = the_lab.hosts
        for count in sizes:
            the_lab.env.hosts = full[:count]
            ours: list[float] = []
            theirs: list[float] = []
            scripts = 0
            for _ in range(reps):
                the_lab.reset()
                took, runner = await rewind_run(the_lab, count, redis_url)
                check_on_target(the_lab, count)
                ours.append(took)
                scripts = runner.scripts
                the_lab.reset()
                theirs.append(baseline_run(the_lab, runner.ran))
                check_on_target(the_lab, count)
            rows.append(Row(count, statistics.median(ours), statistics.median(theirs),
                            scripts // count))  # fmt: skip
        the_lab.env.hosts = full
    return rows


def table(rows: Sequence[Row]) -> list[str]:
    out = [
        "| hosts | Rewind (runner) | plain `ssh` & + wait | ratio | goal ≤ 1.2× "
        "| SSH sessions per host |",
        "|---:|---:|---:|---:|:---:|---:|",
    ]
    for r in rows:
        ok = "met" if r.ratio <= 1.2 else "**missed**"
        out.append(
            f"| {r.hosts} | {r.rewind:.2f} s | {r.baseline:.2f} s | {r.ratio:.2f}× | {ok} "
            f"| {r.sessions} |"
        )
    return out


def main(quick: bool = False) -> list[Row]:
    return asyncio.run(measure((1, 5) if quick else SIZES, 1))


if __name__ == "__main__":
    for line in table(main()):
        print(line)
