"""A rollback to a warm release: Rewind's redeploy step on N sshd hosts that keep the target,
against a plain script that switches the symlinks.

Both start from every host on v1.5.0 with v1.4.2 kept (`releases/v1.4.2`, installed), and end
with `current` -> v1.4.2 and the app restarted. Rewind: the redeploy step body on the SSH
runner, one script per host (the kept release read on the host, the switch, the restart,
status, version, the commit check, the pruning), each command fenced against a real Redis.
Baseline: `ssh host 'cd W && ln -sfn … && mv -T … && ./run.sh restart && ./run.sh status &&
git describe' &` for every host, then `wait` (ControlMaster off, host keys checked).
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

from bench.fanout import timed_redeploy
from bench.lab import INSTALL, Lab, lab, private_redis
from bot.config.apps_file import parse_apps
from runners.ssh import SshRunner
from tests.fakes import make_incident
from tests.fixtures_hosts import on_every_host

SIZES = (1, 5, 20)
TARGET, BAD = "v1.4.2", "v1.5.0"


@dataclass
class Row:
    hosts: int
    rewind: float
    baseline: float
    each: str = ""  # every run's time, Rewind's / the script's

    @property
    def ratio(self) -> float:
        return self.rewind / self.baseline


async def rewind_run(the_lab: Lab, count: int, redis_url: str, target: str) -> float:
    cfg = the_lab.env.app_config()
    cfg["deploy"]["commands"]["install"] = INSTALL
    cfg["hosts"] = cfg["hosts"][:count]
    cfg.pop("health", None)
    apps = parse_apps({"apps": {"myapp": cfg}}, "bench")
    assert the_lab.env.repo is not None
    sha = the_lab.env.repo.tags[target]
    incident = make_incident(
        id=uuid.uuid4().hex[:6], facts={"assess": {"target": target, "target_sha": sha}}
    )
    return await timed_redeploy(apps, SshRunner(apps.apps["myapp"]), redis_url, incident)


def switch_script(workdir: str, version: str) -> str:
    w, rel = shlex.quote(workdir), shlex.quote(f"releases/{version}")
    return (
        f"cd {w} && ln -sfn {rel} .current.tmp && mv -T .current.tmp current && cd current"
        " && ./run.sh restart && ./run.sh status && git describe --tags --always"
    )


def baseline_run(the_lab: Lab, count: int) -> float:
    """Plain ssh to every host at once, `&` + `wait`: switch the symlink and restart."""
    lines = ["set -u", "fail=0"]
    for host in the_lab.hosts[:count]:
        remote = switch_script(host.workdir, TARGET)
        argv = " ".join(shlex.quote(a) for a in [*the_lab.ssh_argv(host), remote])
        log = shlex.quote(str(the_lab.tmp / f"warm-baseline-{host.name}.log"))
        lines.append(f"{argv} > {log} 2>&1 &")
    lines.append('for job in $(jobs -p); do wait "$job" || fail=1; done')
    lines.append('exit "$fail"')
    began = time.perf_counter()
    proc = subprocess.run(
        ["bash", "-c", "\n".join(lines)], capture_output=True, text=True, timeout=600
    )
    took = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"baseline ssh failed: {proc.stdout}{proc.stderr}")
    return took


def back_to_bad(the_lab: Lab) -> None:
    """Every host on v1.5.0 again (v1.4.2 still kept), untimed."""
    script = (
        f"ln -sfn releases/{BAD} .current.tmp && mv -T .current.tmp current"
        " && current/run.sh restart >/dev/null"
    )
    on_every_host(the_lab.hosts, lambda host: host.run(script, timeout=120))


def check_on_target(the_lab: Lab, count: int) -> None:
    for host in the_lab.hosts[:count]:
        got = host.run("readlink current && cd current && git describe --tags").split()
        if got != [f"releases/{TARGET}", TARGET] or host.health_status() != 200:
            raise RuntimeError(f"{host.name} is on {got} after the run, not {TARGET}")


async def measure(sizes: Sequence[int] = SIZES, reps: int = 3) -> list[Row]:
    rows: list[Row] = []
    with private_redis() as redis_url, lab(max(sizes), ref=TARGET, releases=3) as the_lab:
        # v1.5.0 deployed once through the full path: both releases kept, v1.5.0 current.
        await rewind_run(the_lab, max(sizes), redis_url, BAD)
        for count in sizes:
            ours: list[float] = []
            theirs: list[float] = []
            for rep in range(reps):  # Rewind first, then the script; then the other way round
                for who in ("rewind", "script") if rep % 2 == 0 else ("script", "rewind"):
                    back_to_bad(the_lab)
                    if who == "rewind":
                        ours.append(await rewind_run(the_lab, count, redis_url, TARGET))
                    else:
                        theirs.append(baseline_run(the_lab, count))
                    check_on_target(the_lab, count)
            each = (
                ", ".join(f"{t:.2f}" for t in ours) + " / " + ", ".join(f"{t:.2f}" for t in theirs)
            )
            rows.append(Row(count, statistics.median(ours), statistics.median(theirs), each))
    return rows


def table(rows: Sequence[Row]) -> list[str]:
    out = [
        "| hosts | Rewind (redeploy, warm) | plain `ssh` symlink switch & + wait | ratio "
        "| goal ≤ 1.2× | runs (Rewind / script) |",
        "|---:|---:|---:|---:|:---:|---|",
    ]
    for r in rows:
        ok = "met" if r.ratio <= 1.2 else "**missed**"
        out.append(f"| {r.hosts} | {r.rewind:.2f} s | {r.baseline:.2f} s | {r.ratio:.2f}× | {ok} "
                   f"| {r.each} |")  # fmt: skip
    return out


def main(quick: bool = False) -> list[Row]:
    return asyncio.run(measure((1,) if quick else SIZES, 1 if quick else 3))


if __name__ == "__main__":
    for line in table(main()):
        print(line)
