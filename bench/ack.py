"""Ack: signed `/rollback` requests from a separate client process, `serve` against bare Bolt.

`serve` is the Procfile's web process (`python -m bot serve`, real Redis, the real command
path, the Slack stand-in over HTTP, no worker). The baseline is a bare Bolt `AsyncApp` on
aiohttp (`AsyncApp.start`) that only verifies the signature and acks, started by the bench as
its own process. Its acks carry the same texts as `serve`'s (`bare_answer`): the 1.1 KB help
text (imported from Rewind and rendered the same way), "Checking `myapp` v1.4.2…" for a start,
the same refusal for an unknown app or a bad version; an empty ack for `list` and `status`, as
`serve`'s. Before 2026-12-07 21:00 UTC it acked everything with an empty body, so its `help`
and `start` acks were lighter than `serve`'s. The client checks that both answer alike.

Both run for the whole measure; the same client (`python -m bench.ack client`, its own
process) sends each load to one of them, `--concurrency` at a time, in rounds that alternate
which goes first. The loads:

- `help`: `/rollback help`, answered by the ack itself;
- `start`: `/rollback myapp v1.4.2 checkout returns 500`, the real start command: recorded in
  Redis before the ack, carried out after it (the app already has an incident open, so each
  hears so on its `response_url`);
- `mix`: valid commands (`help`, `list`, `status`, a start) and invalid ones (a forged
  signature, a stale timestamp, an unknown app, a version with shell metacharacters).

After each `serve` run the bench waits for every answer on the `response_url`s (the work after
the acks) before the next run starts, and reports when the last one came. Where the machine has
two cores or more, both servers and Redis share one core and the client and the Slack stand-in
get the others, so that the figure measures the servers rather than their contention with the
load (Redis runs only while `serve` waits for it).

Also measured: from a `/rollback myapp …` to the incident's first message in the channel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.lab import PY, SECRET, bot_env, percentile, processes, running
from tests.processes import free_port, wait_http

MIX = 8
# The kinds `serve` records in Redis before it acks (`bot.store.pending`) and answers after the
# ack; the others are answered (or refused) by the ack alone.
RECORDED = ("start", "list", "status")
LOADS = ("help", "start", "mix")
SETTLE = 1.5  # seconds after the warm-up: its work after the acks is done before the measure


@dataclass
class Side:
    latencies: list[float]  # ms
    statuses: dict[str, int]
    wall: float  # seconds, summed over the rounds
    answered: list[float]  # ms from each run's first request to its last answer on response_url
    cpu: float = 0.0  # seconds of the server's CPU while the requests were measured
    runs: list[list[float]] = field(default_factory=list)  # each run's latencies
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # latencies by request kind
    texts: dict[str, str] = field(default_factory=dict)  # what each kind's ack said

    @property
    def cpu_per_request(self) -> float:
        """ms of the server's CPU per request (its work after the acks mostly comes later)."""
        return self.cpu * 1000 / len(self.latencies)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 95)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)


@dataclass
class Load:
    name: str
    serve: Side
    bare: Side

    @property
    def ratios(self) -> tuple[float, float]:
        return self.serve.p50 / self.bare.p50, self.serve.p99 / self.bare.p99

    @property
    def paired(self) -> tuple[float, float]:
        """The median over the rounds of each round's p50 and p99 ratio (`serve`'s run against
        bare Bolt's run next to it): a round that the rest of the machine slowed down on one
        side only moves it little."""
        pairs = list(zip(self.serve.runs, self.bare.runs, strict=True))
        return (
            statistics.median(percentile(s, 50) / percentile(b, 50) for s, b in pairs),
            statistics.median(percentile(s, 99) / percentile(b, 99) for s, b in pairs),
        )


@dataclass
class Result:
    n: int  # requests per run
    concurrency: int
    rounds: int
    loads: list[Load]
    first_message: float  # seconds, command sent -> parent message in the channel
    pinned: str  # how the processes were placed on the cores

    @property
    def worst(self) -> Load:
        return max(self.loads, key=lambda load: max(load.ratios))

    @property
    def ratio(self) -> float:
        """The worst of the p50 and p99 ratios over every load: the goal holds for each."""
        return max(self.worst.ratios)

    @property
    def serve(self) -> Side:
        return self.worst.serve

    @property
    def bare(self) -> Side:
        return self.worst.bare


# ---- the client process -----------------------------------------------------------------------


def request_for(load: str, i: int) -> tuple[str, dict[str, Any]]:
    """(what, send_command keyword arguments) for request i of `load`."""
    start = "myapp v1.4.2 checkout returns 500"
    if load == "help":
        return "help", {"text": "help"}
    if load == "start":
        return "start", {"text": start}
    return [
        ("start", {"text": start}),
        ("help", {"text": "help"}),
        ("list", {"text": "list"}),
        ("status", {"text": "status myapp"}),
        ("forged", {"text": start, "secret": "not-the-signing-secret"}),
        ("stale", {"text": start, "timestamp": int(time.time()) - 600}),
        ("unknown app", {"text": "nosuchapp v1.4.2 checkout returns 500"}),
        ("bad version", {"text": "myapp 'v1;rm -rf /' checkout returns 500"}),
    ][i % MIX]


def answers_expected(load: str, n: int) -> int:
    """How many of a run's requests `serve` answers on their response_url after the ack."""
    return sum(request_for(load, i)[0] in RECORDED for i in range(n))


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def client(
    url: str, load: str, n: int, concurrency: int, warm_url: str, response_url: str, pid: int
) -> dict[str, Any]:
    from tests.slack_fake import send_command

    limit = asyncio.Semaphore(concurrency)
    run = uuid.uuid4().hex  # every trigger_id unique, as Slack's: none is taken for a retry
    latencies: list[float] = []
    kinds: list[str] = []
    statuses: Counter[str] = Counter()
    texts: dict[str, str] = {}  # each kind's first answer: bare Bolt's must be `serve`'s
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int, record: bool) -> None:
            what, kw = request_for(load, i)
            secret = kw.pop("secret", SECRET)
            # A response_url of its own, as Slack gives each command (Slack takes 5 answers on one)
            answer_to = f"{response_url if record else warm_url}-{i}"
            async with limit:
                began = time.perf_counter()
                resp = await send_command(session, url, secret, response_url=answer_to,
                                          trigger_id=f"{run}.{i}.{record}", **kw)  # fmt: skip
                took = time.perf_counter() - began
            if record:
                latencies.append(took * 1000)
                kinds.append(what)
                statuses[f"{what} {resp.status}"] += 1
                texts.setdefault(what, resp.text)

        await asyncio.gather(*(one(i + 1, False) for i in range(1, 2 * MIX)))  # warm-up
        await asyncio.sleep(SETTLE)
        at = time.time()
        cpu = cpu_seconds(pid)
        began = time.perf_counter()
        await asyncio.gather(*(one(i, True) for i in range(n)))
        wall = time.perf_counter() - began
        cpu = cpu_seconds(pid) - cpu
    return {
        "latencies": latencies, "kinds": kinds, "statuses": dict(statuses), "wall": wall,
        "at": at, "cpu": cpu, "texts": texts,
    }  # fmt: skip


def run_client(
    url: str, load: str, n: int, concurrency: int, warm: str, answer: str, pid: int
) -> Any:
    proc = subprocess.run(
        [PY, "-m", "bench.ack", "client", url, load, str(n), str(concurrency), warm, answer,
         str(pid)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"ack client failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def add_run(side: Side, data: dict[str, Any]) -> None:
    side.latencies += data["latencies"]
    for took, kind in zip(data["latencies"], data["kinds"], strict=True):
        side.by_kind.setdefault(kind, []).append(took)
    side.wall += data["wall"]
    side.cpu += data["cpu"]
    side.runs.append(data["latencies"])
    side.texts.update(data["texts"])
    for key, count in data["statuses"].items():
        side.statuses[key] = side.statuses.get(key, 0) + count


# ---- the bare Bolt baseline -------------------------------------------------------------------


def bare_answer(text: str) -> str | None:
    """The text `serve`'s ack carries for `text` (None: an empty ack), so that bare Bolt answers
    what a bare app doing the same job would: the same help (imported, rendered the same way),
    the same "Checking…" for a start, the same refusals. Only the checks differ: bare Bolt makes
    none of them (no apps file, no rights, no record in Redis)."""
    from bot.fronts.command import HELP, parse
    from bot.fronts.slack import mrkdwn
    from bot.workflow.errors import UserFacingError

    try:
        cmd = parse(text)
    except UserFacingError as exc:
        return f":warning: {mrkdwn.render(exc.message)}"
    if cmd.kind == "help":
        return mrkdwn.render(HELP)
    if cmd.kind != "start":
        return None  # `list`, `status`: an empty ack, the answer follows on the response_url
    if cmd.app != "myapp":
        return f":warning: I don't know an app called `{cmd.app}`. Known apps: `myapp`."
    return f"Checking `{cmd.app}` {cmd.version or '(previous version)'}…"


def bare(port: int) -> None:
    import functools
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
    answer = functools.lru_cache(maxsize=64)(bare_answer)  # as `serve`'s help: rendered once
    answer("help")  # its imports done now, as `serve`'s at its start, not in the first requests

    async def ack_only(body: dict[str, Any], ack: AsyncAck) -> None:
        text = answer(body.get("text", ""))
        await (ack(text=text) if text is not None else ack())

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


def redis_pid(url: str) -> int | None:
    """The pid of the redis-server this bench started for `url` (its port in the command)."""
    port = str(urllib.parse.urlsplit(url).port).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"redis-server") and port in cmd:
            return int(proc.name)
    return None


def cores() -> tuple[set[int], set[int]] | None:
    """(the servers' core, the others' cores), or None where there is one core only."""
    mine = sorted(os.sched_getaffinity(0))
    return ({mine[0]}, set(mine[1:])) if len(mine) >= 2 else None


async def measure(n: int = 200, concurrency: int = 50, rounds: int = 5) -> Result:
    import tempfile

    from bench.lab import private_redis
    from bot.sample.build import build_sample_origin
    from tests.harness import write_apps
    from tests.slack_fake import SlackFake, send_command

    placed = cores()
    before = os.sched_getaffinity(0)
    if placed is not None:  # this process (the Slack stand-in), Redis and the client
        os.sched_setaffinity(0, placed[1])
    try:
        with tempfile.TemporaryDirectory(prefix="rewind-bench-ack-") as tmp, \
                private_redis() as rurl:  # fmt: skip
            root = Path(tmp)
            origin = build_sample_origin(root / "sample").origin
            async with SlackFake() as slack:
                config = write_apps(root / "apps.yaml", {"myapp": app_config(root, origin)},
                                    root / "inc")  # fmt: skip
                port, bport = free_port(), free_port()
                env = bot_env(slack.api_url, rurl, config, root / "ws", port)
                base, bbase = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bport}"
                commands = [
                    ("serve", [PY, "-m", "bot", "serve"]),
                    ("bare", [PY, "-m", "bench.ack", "bare", str(bport)]),
                ]
                with processes(commands, env, root / "logs") as procs:
                    if placed is not None:
                        # Redis beside the servers: it runs only while `serve` waits for it (bare
                        # Bolt never asks it anything), as a Redis of its own would; beside the
                        # client, whose core the load keeps busy, every record waited its turn.
                        pids = [p.popen.pid for p in procs] + [redis_pid(rurl) or 0]
                        for pid in filter(None, pids):
                            os.sched_setaffinity(pid, placed[0])
                    await wait_http(f"{base}/healthz", check=running(procs))
                    await wait_http(f"{bbase}/healthz", check=running(procs))
                    first = await first_message(slack, base, send_command)
                    pids = {p.name: p.popen.pid for p in procs}
                    loads = await rounds_of(slack, base, bbase, pids, n, concurrency, rounds)
    finally:
        os.sched_setaffinity(0, before)
    how = (
        f"`serve`, bare Bolt and Redis on core {min(placed[0])}, the client and the Slack "
        f"stand-in on core(s) {', '.join(map(str, sorted(placed[1])))}"
        if placed is not None
        else "one core for everything"
    )
    return Result(n, concurrency, rounds, loads, first, how)


async def first_message(slack: Any, base: str, send_command: Any) -> float:
    """The first thread message, on an idle bot (this opens the incident the starts meet)."""
    async with aiohttp.ClientSession() as session:
        sent = time.time()
        url = slack.response_url("first")
        await send_command(session, f"{base}/slack/events", SECRET,
                           text="myapp v1.4.2 checkout returns 500", response_url=url)  # fmt: skip
        call = await slack.wait_for(
            lambda c: c.method == "chat.postMessage" and c.args.get("channel") == "C0INCIDENT",
            timeout=60,
        )
        await slack.wait_for(lambda c: c.method == "response_url", timeout=60)
        return float(call.at - sent)


async def rounds_of(
    slack: Any,
    base: str,
    bbase: str,
    pids: dict[str, int],
    n: int,
    concurrency: int,
    rounds: int,
) -> list[Load]:
    """Each load, `rounds` times against each server, the order alternating by round."""
    sides = {(load, who): Side([], {}, 0.0, []) for load in LOADS for who in ("serve", "bare")}
    runs = 0
    for r in range(rounds):
        for load in LOADS:
            order = ("serve", "bare") if r % 2 == 0 else ("bare", "serve")
            for who in order:
                runs += 1
                name = f"{who}-{load}-{runs}"
                # The client adds "-<i>" to each: unbound names on the stand-in, no use limit.
                warm, answer = slack.response_url(f"{name}-warm"), slack.response_url(name)
                url = f"{base if who == 'serve' else bbase}/slack/events"
                data = await asyncio.to_thread(
                    run_client, url, load, n, concurrency, warm, answer, pids[who]
                )
                side = sides[(load, who)]
                add_run(side, data)
                expected = answers_expected(load, n) if who == "serve" else 0
                if expected:  # the work after the acks, done before the next run
                    answers = await answered(slack, name, expected)
                    side.answered.append((max(c.at for c in answers) - data["at"]) * 1000)
    loads = [Load(load, sides[(load, "serve")], sides[(load, "bare")]) for load in LOADS]
    for load in loads:
        unlike = sorted(k for k, text in load.serve.texts.items() if load.bare.texts.get(k) != text)
        if unlike:  # the baseline would not be doing the same job
            raise RuntimeError(f"bare Bolt's acks differ from serve's for {', '.join(unlike)}")
    return loads


async def answered(slack: Any, name: str, expected: int, timeout: float = 120) -> list[Any]:
    """The run's answers on its response_urls, once all `expected` of them have come."""

    def mine() -> list[Any]:
        prefix = f"{name}-"
        return [
            c
            for c in slack.calls
            if c.method == "response_url" and str(c.args.get("name")).startswith(prefix)
        ]

    try:
        await slack.wait_until(lambda: len(mine()) >= expected, timeout=timeout, what=name)
    except Exception:
        raise RuntimeError(f"{name}: {len(mine())} of {expected} answers came") from None
    return mine()


def table(r: Result) -> list[str]:
    ok = "met" if r.ratio <= 1.3 else "**missed**"
    out = [
        f"Each load: {r.n} signed `/rollback` requests at concurrency {r.concurrency} from a "
        f"separate client process, {r.rounds} rounds against each server, alternating which "
        f"goes first ({r.rounds * r.n} requests per figure); {r.pinned}.",
        "",
        "| load | `serve` p50 | bare p50 | ratio | `serve` p99 | bare p99 | ratio "
        "| ratio by round, median: p50, p99 | CPU per request: `serve`, bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for load in r.loads:
        p50, p99 = load.ratios
        m50, m99 = load.paired
        out.append(
            f"| `{load.name}` | {load.serve.p50:.1f} ms | {load.bare.p50:.1f} ms | {p50:.2f}× "
            f"| {load.serve.p99:.1f} ms | {load.bare.p99:.1f} ms | {p99:.2f}× "
            f"| {m50:.2f}×, {m99:.2f}× "
            f"| {load.serve.cpu_per_request:.2f} ms, {load.bare.cpu_per_request:.2f} ms |"
        )
    out += [
        "",
        f"Worst ratio (p50 or p99, any load): **{r.ratio:.2f}×** (goal ≤ 1.3×: {ok}).",
        "",
        "The work after the acks (`serve` only): from a run's first request to the last answer "
        "on its `response_url`s, median of the rounds: "
        + ", ".join(
            f"`{load.name}` {statistics.median(load.serve.answered):.0f} ms"
            for load in r.loads
            if load.serve.answered
        )
        + ".",
        "",
        "`mix` by kind, p50 / p99 (`serve`; bare Bolt): "
        + ", ".join(
            f"{kind} {percentile(took, 50):.0f} / {percentile(took, 99):.0f} ms "
            f"({percentile(r.loads[-1].bare.by_kind.get(kind, []), 50):.0f} / "
            f"{percentile(r.loads[-1].bare.by_kind.get(kind, []), 99):.0f})"
            for kind, took in sorted(r.loads[-1].serve.by_kind.items())
        )
        + ".",
        "",
        f"Time from `/rollback myapp v1.4.2 …` to the incident's first message in the channel "
        f"(idle bot): **{r.first_message * 1000:.0f} ms**.",
        "",
        "Answers (`serve`, `mix`): "
        + ", ".join(f"{k}: {v}" for k, v in sorted(r.loads[-1].serve.statuses.items())),
    ]
    return out


def main(quick: bool = False) -> Result:
    return asyncio.run(measure(80, 50, 1) if quick else measure(200, 50, 5))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["client", "bare", "run"], nargs="?", default="run")
    parser.add_argument("args", nargs="*")
    ns = parser.parse_args()
    if ns.mode == "client":
        url, load, n, conc, warm, answer, pid = ns.args
        print(json.dumps(asyncio.run(client(url, load, int(n), int(conc), warm, answer, int(pid)))))
    elif ns.mode == "bare":
        bare(int(ns.args[0]))
    else:
        for line in table(main()):
            print(line)
    sys.exit(0)
