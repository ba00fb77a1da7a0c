"""Scale: 20 incidents at once (20 apps, one sshd host each) on `serve` + 2 workers.

Each incident is a whole rollback without a database (the decision clicked by the bench as soon
as it shows, monitoring 1 s), each app with its own incident channel. First one incident alone,
then 20 at once, on the same processes. Measured: the workers' peak resident memory, step
latency (from a step's start to its end, and from one step's end to the next one's start) at
p95 for 20 against 1, and the Redis commands per incident (a private redis-server, so nothing
else is counted).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.lab import (
    PY,
    SECRET,
    Lab,
    bot_env,
    lab,
    percentile,
    private_redis,
    processes,
    redis_commands,
    running,
)
from bench.rollback import click_ready_gates
from bot.store.redis_store import RedisStore, connect
from tests.fakes import with_step_commands
from tests.harness import write_apps
from tests.processes import free_port, wait_http
from tests.slack_fake import SlackFake, send_command

WORKERS = 2


@dataclass
class Phase:
    incidents: int
    wall: float
    step_p95: float
    gap_p95: float
    redis_per_incident: float


@dataclass
class Result:
    alone: Phase
    many: Phase
    rss_mb: list[float]
    web_rss_mb: float


def apps_config(the_lab: Lab) -> dict[str, Any]:
    apps: dict[str, Any] = {}
    for i, host in enumerate(the_lab.hosts):
        cfg = with_step_commands(the_lab.env.app_config(app=f"app{i}"))
        cfg["hosts"] = [{"name": host.name, "address": host.address, "port": host.port}]
        cfg["health"] = [{"url": host.health_url, "status": 200}]
        cfg["incident_channel"] = f"C0INC{i}"
        cfg["notify"] = []
        cfg["monitor"] = {"duration": "1s", "interval": "1s"}
        cfg["verify"] = {"health_timeout": "60s", "health_interval": "0.2s"}
        apps[f"app{i}"] = cfg
    return apps


async def run_phase(
    slack: SlackFake, events: str, store: RedisStore, redis_url: str, apps: list[str]
) -> Phase:
    before = redis_commands(redis_url)
    since = time.time() - 1
    async with aiohttp.ClientSession() as session:
        began = time.monotonic()
        await asyncio.gather(
            *(
                send_command(
                    session,
                    events,
                    SECRET,
                    text=f"{app} v1.4.2 checkout returns 500",
                    response_url=slack.response_url(f"start-{app}"),
                )
                for app in apps
            )
        )
        clicked: set[str] = set()
        deadline = time.monotonic() + 300
        ours: list[Any] = []
        while time.monotonic() < deadline:
            recent = await store.recent_incidents(200)
            ours = [i for i in recent if i.app in apps and i.created_at.timestamp() >= since]
            if len(ours) == len(apps) and not any(i.status.open for i in ours):
                break
            if any(i.status.value == "paused" for i in ours):
                break  # a step failed: said below
            for channel in {f"C0INC{a.removeprefix('app')}" for a in apps}:
                await click_ready_gates(slack, session, events, clicked, channel=channel)
            await asyncio.sleep(0.05)
        wall = time.monotonic() - began
    failed = [i for i in ours if i.status.value != "completed"]
    if failed or len(ours) != len(apps):
        why = [(i.app, i.status.value, [s.error for s in i.steps if s.error]) for i in failed]
        raise RuntimeError(f"{len(ours)}/{len(apps)} incidents, not completed: {why}")
    durations: list[float] = []
    gaps: list[float] = []
    for incident in ours:
        ended: float | None = None
        for entry in await store.timeline(incident.id):
            what, at = str(entry["what"]), datetime.fromisoformat(str(entry["at"])).timestamp()
            if what.startswith("step started: "):
                start = at
                if ended is not None:
                    gaps.append(at - ended)
            elif what.startswith("step succeeded: "):
                if "Monitor" not in what:  # its length is the configured window
                    durations.append(at - start)
                ended = None if entry.get("result") == "waiting" else at
    after = redis_commands(redis_url)
    return Phase(len(apps), wall, percentile(durations, 95), percentile(gaps, 95),
                 (after - before) / len(apps))  # fmt: skip


async def measure(count: int = 20) -> Result:
    with (
        tempfile.TemporaryDirectory(prefix="rewind-bench-scale-") as tmpdir,
        private_redis() as redis_url,
        lab(count) as the_lab,
    ):
        tmp = Path(tmpdir)
        async with SlackFake() as slack:
            config = write_apps(tmp / "apps.yaml", apps_config(the_lab), tmp / "incidents")
            port = free_port()
            env = bot_env(slack.api_url, redis_url, config, tmp / "ws", port)
            base = f"http://127.0.0.1:{port}"
            commands = [("serve", [PY, "-m", "bot", "serve"])]
            commands += [(f"worker{i + 1}", [PY, "-m", "bot", "worker"]) for i in range(WORKERS)]
            store = RedisStore(connect(redis_url))
            try:
                with processes(commands, env, tmp / "logs") as procs:
                    await wait_http(f"{base}/healthz", check=running(procs))
                    await asyncio.sleep(2)  # the workers up and waiting
                    for p in procs:
                        if p.popen.poll() is not None:
                            raise RuntimeError(f"{p.name} exited: {p.log.read_text()[-1000:]}")
                    events = f"{base}/slack/events"
                    alone = await run_phase(slack, events, store, redis_url, ["app0"])
                    the_lab.env.hosts = the_lab.hosts[:1]
                    the_lab.reset()
                    the_lab.env.hosts = list(the_lab.hosts)
                    await _unfreeze(store, ["app0"])
                    names = [f"app{i}" for i in range(count)]
                    many = await run_phase(slack, events, store, redis_url, names)
                    rss = [p.rss_mb() for p in procs if p.name.startswith("worker")]
                    web = next(p.rss_mb() for p in procs if p.name == "serve")
            finally:
                await store.r.aclose()
    return Result(alone, many, rss, web)


async def _unfreeze(store: RedisStore, apps: list[str]) -> None:
    for app in apps:
        await store.unfreeze(app)


def table(r: Result) -> list[str]:
    rss_ok = "met" if max(r.rss_mb) < 150 else "**missed**"
    return [
        f"{r.many.incidents} incidents at once (20 apps, 1 sshd host each, no database, "
        f"monitoring 1 s) on `serve` + {len(r.rss_mb)} workers, against 1 incident alone on "
        "the same processes:",
        "",
        "| | 1 incident alone | 20 at once | ratio |",
        "|---|---:|---:|---:|",
        f"| step latency p95 (start → end, monitor left out) | {r.alone.step_p95:.2f} s "
        f"| {r.many.step_p95:.2f} s | {r.many.step_p95 / r.alone.step_p95:.1f}× |",
        f"| between steps p95 (end → next start) | {r.alone.gap_p95 * 1000:.0f} ms "
        f"| {r.many.gap_p95 * 1000:.0f} ms | {r.many.gap_p95 / max(r.alone.gap_p95, 1e-3):.1f}× |",
        f"| wall time, command to all completed | {r.alone.wall:.1f} s | {r.many.wall:.1f} s "
        f"| {r.many.wall / r.alone.wall:.1f}× |",
        f"| Redis commands per incident | {r.alone.redis_per_incident:,.0f} "
        f"| {r.many.redis_per_incident:,.0f} | |",
        "",
        "Peak resident memory: workers "
        + ", ".join(f"{m:.0f} MB" for m in r.rss_mb)
        + f" (goal < 150 MB each: {rss_ok}); `serve` {r.web_rss_mb:.0f} MB.",
    ]


def main(quick: bool = False) -> Result:
    return asyncio.run(measure(4 if quick else 20))


if __name__ == "__main__":
    for line in table(main()):
        print(line)
