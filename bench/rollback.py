"""The whole rollback through Slack, against a plain script doing the runbook's commands.

Rewind: `python -m bot serve` and one `python -m bot worker` (the Procfile), real Redis, real
sshd hosts, a real PostgreSQL database at v1.5.0's head; the bench sends a signed
`/rollback myapp v1.4.2 …` and clicks each button (Roll back, Approve downgrade) as soon as it
shows, as signed block_actions. Monitoring lasts 1 s. Rewind's time runs from the command to the
incident completed (report written), minus the time its buttons waited for the bench's clicks
and minus the monitor window.

Baseline: a bash script with plain OpenSSH (ControlMaster off): read every host's version,
back up the database, `alembic downgrade`, then fetch + checkout + restart on every host at
once, and poll every health URL until it answers 200.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.lab import (
    PY,
    SECRET,
    Lab,
    bot_env,
    lab,
    pg_database,
    private_redis,
    processes,
    running,
)
from bot.store.redis_store import RedisStore, connect
from tests.fakes import with_step_commands
from tests.harness import write_apps
from tests.processes import free_port, wait_http
from tests.slack_fake import SlackFake, buttons, click, send_command

SIZES = (1, 5, 20)
MONITOR = 1.0
TARGET_REVISION = "b2c3d4e5f6a1"  # v1.4.2's alembic head in the sample app
GATES = (("Roll back", "U0CAROL"), ("Approve downgrade", "U0ALICE"))


@dataclass
class Row:
    hosts: int
    total: float  # command -> completed
    waited: float  # buttons waiting for the bench's clicks
    baseline: float
    steps: list[tuple[str, float]] = field(default_factory=list)
    gaps: float = 0.0  # between steps: queue, transitions
    thread_behind: float = 0.0  # last thread message after completion

    @property
    def rewind(self) -> float:
        return self.total - self.waited - MONITOR

    @property
    def ratio(self) -> float:
        return self.rewind / self.baseline


def config(the_lab: Lab) -> dict[str, Any]:
    cfg = with_step_commands(the_lab.env.app_config())
    cfg["monitor"] = {"duration": f"{MONITOR:g}s", "interval": f"{MONITOR:g}s"}
    cfg["verify"] = {"health_timeout": "60s", "health_interval": "0.2s"}
    return cfg


async def rewind_run(the_lab: Lab, slack: SlackFake, redis_url: str, tmp: Path) -> Row:
    apps_file = write_apps(tmp / "apps.yaml", {"myapp": config(the_lab)}, tmp / "incidents")
    port = free_port()
    env = bot_env(slack.api_url, redis_url, apps_file, tmp / "ws", port)
    base = f"http://127.0.0.1:{port}"
    events = f"{base}/slack/events"
    store = RedisStore(connect(redis_url))
    commands = [("serve", [PY, "-m", "bot", "serve"]), ("worker", [PY, "-m", "bot", "worker"])]
    try:
        with processes(commands, env, tmp / "logs") as procs:
            await wait_http(f"{base}/healthz", check=running(procs))
            import aiohttp

            async with aiohttp.ClientSession() as session:
                began = time.time()
                text = "myapp v1.4.2 checkout returns 500"
                url = slack.response_url("start")
                await send_command(session, events, SECRET, text=text, response_url=url)
                clicked: set[str] = set()
                incident = None
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    incident = (await store.recent_incidents(1) or [None])[0]
                    if incident is not None and not incident.status.open:
                        break
                    await click_ready_gates(slack, session, events, clicked)
                    await asyncio.sleep(0.02)
                done = time.time()
            assert incident is not None and incident.status.value == "completed", incident
            timeline = await store.timeline(incident.id)
            await asyncio.sleep(0)
            last_post = max(
                (c.at for c in slack.calls if c.method == "chat.postMessage"), default=done
            )
    finally:
        await store.r.aclose()
    return breakdown(the_lab, timeline, began, done, last_post)


async def click_ready_gates(
    slack: SlackFake, session: Any, events: str, clicked: set[str], channel: str = "C0INCIDENT"
) -> None:
    """Click each new gate's button as soon as it shows."""
    for msg in slack.messages(channel):
        ts = str(msg.get("ts"))
        if ts in clicked:
            continue
        labels = [b.text.lower() for b in buttons(msg)]
        for label, user in GATES:
            if any(label.lower() in text for text in labels):
                clicked.add(ts)
                await click(session, events, SECRET, message=msg, label=label, user_id=user,
                            channel_id=channel,
                            response_url=slack.response_url(f"click-{ts}"))  # fmt: skip
                break


def _at(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(entry["at"])).timestamp()


def breakdown(the_lab: Lab, timeline: list[dict[str, Any]], began: float, done: float,
              last_post: float) -> Row:  # fmt: skip
    steps: list[tuple[str, float]] = []
    started: dict[str, float] = {}
    waited = 0.0
    waiting_since: float | None = None
    busy = 0.0
    for entry in timeline:
        what, at = str(entry["what"]), _at(entry)
        if what.startswith("step started: "):
            started[what.removeprefix("step started: ")] = at
        elif what.startswith(("step succeeded: ", "step failed: ")):
            title = what.split(": ", 1)[1]
            took = at - started.get(title, at)
            steps.append((title, took))
            busy += took
            if entry.get("result") == "waiting":
                waiting_since = at
        elif what.startswith("answered") and waiting_since is not None:
            waited += at - waiting_since
            waiting_since = None
    end = max((_at(e) for e in timeline), default=done)
    total = end - began
    row = Row(len(the_lab.hosts), total, waited, 0.0, steps)
    row.gaps = total - waited - busy
    row.thread_behind = max(0.0, last_post - end)
    return row


def baseline_script(the_lab: Lab, backup: Path) -> str:
    """The runbook's commands, as an engineer would run them with plain OpenSSH."""
    env = the_lab.env
    wd = shlex.quote(env.workdir)

    def ssh(host: Any, remote: str) -> str:
        return " ".join(shlex.quote(a) for a in [*the_lab.ssh_argv(host), remote])

    db = env.hosts[0]
    lines = ["set -eu", "fail=0", "# 1. what runs where"]
    lines += [f"{ssh(h, f'cd {wd} && git describe --tags --always')} > /dev/null &"
              for h in env.hosts]  # fmt: skip
    lines += ['for j in $(jobs -p); do wait "$j" || fail=1; done', '[ "$fail" = 0 ]']
    lines.append(
        "# 2. back up the database, then downgrade it with the code that has the migrations"
    )
    dump = f'cd {wd} && pg_dump --clean --if-exists "$(cat .pg_url)" > {shlex.quote(str(backup))}'
    lines.append(f"{ssh(db, dump)}")
    lines.append(f"test -s {shlex.quote(str(backup))}")
    down = f"cd {wd} && alembic -c alembic.ini downgrade {TARGET_REVISION}"
    lines.append(f"{ssh(db, down)} > /dev/null 2>&1")
    lines.append("# 3. every host to the previous version, restarted")
    deploy = (
        f"cd {wd} && git fetch --tags --quiet origin && git checkout --quiet --force v1.4.2"
        " && ./run.sh restart"
    )
    lines += [f"{ssh(h, deploy)} > /dev/null &" for h in env.hosts]
    lines += ['for j in $(jobs -p); do wait "$j" || fail=1; done', '[ "$fail" = 0 ]']
    lines.append("# 4. health until 200 everywhere")
    for h in env.hosts:
        lines.append(
            f"i=0; until [ \"$(curl -s -o /dev/null -w '%{{http_code}}' {h.health_url})\" = 200 ]; "
            "do i=$((i+1)); [ $i -lt 300 ]; sleep 0.2; done"
        )
    return "\n".join(lines)


def baseline_run(the_lab: Lab, tmp: Path) -> float:
    script = baseline_script(the_lab, tmp / f"backup-{time.time_ns()}.sql")
    began = time.perf_counter()
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"baseline script failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return took


async def measure(sizes: tuple[int, ...] = SIZES) -> list[Row]:
    rows: list[Row] = []
    for count in sizes:
        with (
            tempfile.TemporaryDirectory(prefix="rewind-bench-rollback-") as tmpdir,
            private_redis() as redis_url,
            pg_database() as db_url,
            lab(count, db_url=db_url) as the_lab,
        ):
            tmp = Path(tmpdir)
            async with SlackFake() as slack:
                row = await rewind_run(the_lab, slack, redis_url, tmp)
            the_lab.reset(db_head=True)
            row.baseline = baseline_run(the_lab, tmp)
            rows.append(row)
    return rows


def table(rows: list[Row]) -> list[str]:
    out = [
        "| hosts | Rewind, all | buttons waited | monitor window | **Rewind, net** "
        "| plain script | ratio | goal ≤ 1.5× |",
        "|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        ok = "met" if r.ratio <= 1.5 else "**missed**"
        out.append(
            f"| {r.hosts} | {r.total:.1f} s | {r.waited:.1f} s | {MONITOR:.1f} s "
            f"| **{r.rewind:.1f} s** | {r.baseline:.1f} s | {r.ratio:.2f}× | {ok} |"
        )
    if rows:
        biggest = rows[-1]
        out += ["", f"Where Rewind's time goes ({biggest.hosts} hosts; the steps run one after "
                    "another, so this is the critical path):", "",
                "| step | took |", "|---|---:|"]  # fmt: skip
        for title, took in biggest.steps:
            out.append(f"| {title} | {took:.2f} s |")
        out.append(f"| between steps (queue, transitions, Redis) | {biggest.gaps:.2f} s |")
        out.append(f"| buttons waiting for the clicks (subtracted) | {biggest.waited:.2f} s |")
        out.append(
            f"| (after completion: the thread's last message was posted "
            f"{biggest.thread_behind:.2f} s later) | |"
        )
    return out


def main(quick: bool = False) -> list[Row]:
    return asyncio.run(measure((1,) if quick else SIZES))


if __name__ == "__main__":
    for line in table(main()):
        print(line)
