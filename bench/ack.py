"""Ack: signed `/rollback` requests from a separate client process, `serve` against bare Bolt.

`serve` is the Procfile's web process (`python -m bot serve`, real Redis, the real command
path, the Slack stand-in over HTTP, no worker). The baseline is a bare Bolt `AsyncApp` on
aiohttp (`AsyncApp.start`) that only verifies the signature and acks, started by the bench as
its own process. The same client (`python -m bench.ack client`, its own process) sends both
the same mix, `--concurrency` at a time: valid commands (`help`, `list`, `status`, a start
that opens an incident or hears the app is busy) and invalid ones (a forged signature, a stale
timestamp, an unknown app, a version with shell metacharacters).

Also measured: from a `/rollback myapp …` to the incident's first message in the channel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.lab import PY, SECRET, bot_env, percentile, processes, running
from tests.processes import free_port, wait_http

MIX = 8
# The kinds `serve` records in Redis before it acks (`bot.store.pending`); the others are answered
# (or refused) without a Redis round trip. Their figures apart show what the record costs.
RECORDED = ("start", "list", "status")


@dataclass
class Side:
    p50: float
    p95: float
    p99: float
    statuses: dict[str, int]
    wall: float
    recorded: tuple[float, float]  # p50, p99 (ms) of the kinds recorded before the ack
    unrecorded: tuple[float, float]  # p50, p99 (ms) of the others


@dataclass
class Result:
    n: int
    concurrency: int
    serve: Side
    bare: Side
    first_message: float  # seconds, command sent -> parent message in the channel

    @property
    def ratio(self) -> float:
        return self.serve.p99 / self.bare.p99


# ---- the client process -----------------------------------------------------------------------


def request_for(i: int) -> tuple[str, dict[str, Any]]:
    """(what, send_command keyword arguments) for request i of the mix."""
    kind = i % MIX
    start = "myapp v1.4.2 checkout returns 500"
    return [
        ("start", {"text": start}),
        ("help", {"text": "help"}),
        ("list", {"text": "list"}),
        ("status", {"text": "status myapp"}),
        ("forged", {"text": start, "secret": "not-the-signing-secret"}),
        ("stale", {"text": start, "timestamp": int(time.time()) - 600}),
        ("unknown app", {"text": "nosuchapp v1.4.2 checkout returns 500"}),
        ("bad version", {"text": "myapp 'v1;rm -rf /' checkout returns 500"}),
    ][kind]


async def client(url: str, n: int, concurrency: int, response_url: str) -> dict[str, Any]:
    from tests.slack_fake import send_command

    limit = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    kinds: list[str] = []
    statuses: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int, record: bool) -> None:
            what, kw = request_for(i)
            secret = kw.pop("secret", SECRET)
            async with limit:
                began = time.perf_counter()
                resp = await send_command(session, url, secret, response_url=response_url, **kw)
                took = time.perf_counter() - began
            if record:
                latencies.append(took * 1000)
                kinds.append(what)
                statuses[f"{what} {resp.status}"] += 1

        await asyncio.gather(*(one(i + 1, False) for i in range(1, 2 * MIX)))  # warm-up
        began = time.perf_counter()
        await asyncio.gather(*(one(i, True) for i in range(n)))
        wall = time.perf_counter() - began
    return {"latencies": latencies, "kinds": kinds, "statuses": dict(statuses), "wall": wall}


def run_client(url: str, n: int, concurrency: int, response_url: str) -> Side:
    proc = subprocess.run(
        [PY, "-m", "bench.ack", "client", url, str(n), str(concurrency), response_url],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"ack client failed: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout)
    lat = data["latencies"]
    rec = [t for t, k in zip(lat, data["kinds"], strict=True) if k in RECORDED]
    other = [t for t, k in zip(lat, data["kinds"], strict=True) if k not in RECORDED]
    return Side(percentile(lat, 50), percentile(lat, 95), percentile(lat, 99), data["statuses"],
                data["wall"], (percentile(rec, 50), percentile(rec, 99)),
                (percentile(other, 50), percentile(other, 99)))  # fmt: skip


# ---- the bare Bolt baseline -------------------------------------------------------------------


def bare(port: int) -> None:
    import os

    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    # Its token is checked with auth.test against the same Slack stand-in as `serve`'s.
    client = AsyncWebClient(token="xoxb-bench", base_url=os.environ["SLACK_API_URL"])
    bolt = AsyncApp(
        client=client,
        signing_secret=SECRET,
        process_before_response=True,  # as `serve`: no 10 ms ack polling
        name="bare",
    )

    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    bolt.command("/rollback")(ack_only)

    async def healthz(request: Any) -> Any:
        from aiohttp import web

        return web.Response(text="ok")

    server = bolt.server(port=port, path="/slack/events", host="127.0.0.1")
    server.web_app.router.add_get("/healthz", healthz)
    server.start()


# ---- the orchestration ------------------------------------------------------------------------


def app_config(root: Path, origin: Path) -> dict[str, Any]:
    return {
        "environment": "staging",
        "repo": str(origin),
        "incident_channel": "C0INCIDENT",
        "operators": ["U0CAROL"],
        "approvers": ["U0ALICE"],
        "ssh": {"transport": "local"},
        "hosts": [{"name": "web1", "address": "127.0.0.1", "workdir": str(root / "web1")}],
        "deploy": {"strategy": "systemd", "workdir": str(root / "web1"), "service": "myapp"},
    }


async def measure(n: int = 200, concurrency: int = 50) -> Result:
    import tempfile

    from bench.lab import private_redis
    from bot.sample.build import build_sample_origin
    from tests.harness import write_apps
    from tests.slack_fake import SlackFake, send_command

    with tempfile.TemporaryDirectory(prefix="rewind-bench-ack-") as tmp, private_redis() as rurl:
        root = Path(tmp)
        origin = build_sample_origin(root / "sample").origin
        async with SlackFake() as slack:
            config = write_apps(root / "apps.yaml", {"myapp": app_config(root, origin)},
                                root / "inc")  # fmt: skip
            port = free_port()
            env = bot_env(slack.api_url, rurl, config, root / "ws", port)
            base = f"http://127.0.0.1:{port}"
            with processes([("serve", [PY, "-m", "bot", "serve"])], env, root / "logs") as procs:
                await wait_http(f"{base}/healthz", check=running(procs))
                # The first thread message, on an idle bot.
                async with aiohttp.ClientSession() as session:
                    sent = time.time()
                    url = slack.response_url("first")
                    await send_command(session, f"{base}/slack/events", SECRET,
                                       text="myapp v1.4.2 checkout returns 500",
                                       response_url=url)  # fmt: skip
                    call = await slack.wait_for(
                        lambda c: (
                            c.method == "chat.postMessage" and c.args.get("channel") == "C0INCIDENT"
                        ),
                        timeout=60,
                    )
                    first = call.at - sent
                ours = await asyncio.to_thread(
                    run_client, f"{base}/slack/events", n, concurrency, slack.response_url("load")
                )
            bport = free_port()
            bare_cmd = [PY, "-m", "bench.ack", "bare", str(bport)]
            with processes([("bare", bare_cmd)], env, root / "logs") as procs:
                await wait_http(f"http://127.0.0.1:{bport}/healthz", check=running(procs))
                theirs = await asyncio.to_thread(
                    run_client, f"http://127.0.0.1:{bport}/slack/events", n, concurrency,
                    slack.response_url("bare"),
                )  # fmt: skip
    return Result(n, concurrency, ours, theirs, first)


def table(r: Result) -> list[str]:
    ok = "met" if r.ratio <= 1.3 else "**missed**"
    out = [
        f"{r.n} signed `/rollback` requests ({MIX}-way mix, half of them invalid), concurrency "
        f"{r.concurrency}, from a separate client process:",
        "",
        "| | p50 | p95 | p99 | requests/s |",
        "|---|---:|---:|---:|---:|",
        f"| `serve` (real Redis, real command path) | {r.serve.p50:.1f} ms | {r.serve.p95:.1f} ms "
        f"| {r.serve.p99:.1f} ms | {r.n / r.serve.wall:.0f} |",
        f"| bare Bolt `AsyncApp` on aiohttp (verify + ack) | {r.bare.p50:.1f} ms "
        f"| {r.bare.p95:.1f} ms | {r.bare.p99:.1f} ms | {r.n / r.bare.wall:.0f} |",
        f"| ratio | {r.serve.p50 / r.bare.p50:.2f}× | {r.serve.p95 / r.bare.p95:.2f}× "
        f"| **{r.ratio:.2f}×** (goal ≤ 1.3×: {ok}) | |",
        "",
        "By kind (the same requests; `start`, `list`, `status` are recorded in Redis before "
        "`serve` acks them, the others are not):",
        "",
        "| | recorded p50 | recorded p99 | not recorded p50 | not recorded p99 |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {s.recorded[0]:.1f} ms | {s.recorded[1]:.1f} ms "
            f"| {s.unrecorded[0]:.1f} ms | {s.unrecorded[1]:.1f} ms |"
            for name, s in (("`serve`", r.serve), ("bare Bolt", r.bare))
        ),
        "",
        f"Time from `/rollback myapp v1.4.2 …` to the incident's first message in the channel "
        f"(idle bot): **{r.first_message * 1000:.0f} ms**.",
        "",
        "Answers (`serve`): " + ", ".join(f"{k}: {v}" for k, v in sorted(r.serve.statuses.items())),
    ]
    return out


def main(quick: bool = False) -> Result:
    return asyncio.run(measure(80 if quick else 200, 50))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["client", "bare", "run"], nargs="?", default="run")
    parser.add_argument("args", nargs="*")
    ns = parser.parse_args()
    if ns.mode == "client":
        url, n, conc, rurl = ns.args
        print(json.dumps(asyncio.run(client(url, int(n), int(conc), rurl))))
    elif ns.mode == "bare":
        bare(int(ns.args[0]))
    else:
        for line in table(main()):
            print(line)
    sys.exit(0)
