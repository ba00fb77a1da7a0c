"""How fast the web process acks `/rollback` (Slack gives up after 3 s).

Starts the bot in this process (its HTTP endpoint on 127.0.0.1, real Redis db 8, the Slack fake,
no worker), then sends N signed `/rollback help` and `/rollback list` commands, `--concurrency`
at a time, and prints the ack latency percentiles and the request rate. For `list` it also prints
how long the answer took to reach the command's response_url (it runs after the ack).

    python bench/ack_latency.py [--n 200] [--concurrency 10]

Prints figures; asserts nothing about them. Traffic goes to 127.0.0.1 only. Flushes Redis db 8
(the test database) before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from tests.harness import SECRET, running_bot, settings_env, write_apps  # noqa: E402
from tests.slack_fake import SlackFake, send_command  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/8"
WARMUP = 10


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def app_config(root: Path) -> dict[str, object]:
    return {
        "environment": "staging",
        "repo": str(root / "origin.git"),
        "incident_channel": "C0INCIDENT",
        "operators": ["U0CAROL"],
        "approvers": ["U0ALICE"],
        "ssh": {"transport": "local"},
        "hosts": [{"name": "web1", "workdir": str(root / "web1")}],
        "deploy": {"strategy": "systemd", "workdir": str(root / "web1"), "service": "myapp"},
    }


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


async def bench(n: int, concurrency: int) -> None:
    flush_redis()
    with tempfile.TemporaryDirectory(prefix="rewind-bench-") as tmp:
        root = Path(tmp)
        async with SlackFake() as slack:
            config = write_apps(root / "apps.yaml", {"myapp": app_config(root)}, root / "inc")
            env = settings_env(slack, REDIS_URL, config, root / "workspace")
            async with running_bot(slack, env, with_worker=False) as bot:
                sent_at: dict[str, float] = {}
                acks: dict[str, list[float]] = {"help": [], "list": []}
                errors: list[str] = []
                limit = asyncio.Semaphore(concurrency)

                async def one(i: int, record: bool) -> None:
                    kind = "help" if i % 2 == 0 else "list"
                    name = f"{'w' if not record else 'c'}{i}-{kind}"
                    url = slack.response_url(name)
                    async with limit:
                        sent_at[name] = time.time()
                        start = time.perf_counter()
                        resp = await send_command(
                            bot.session, bot.events_url, SECRET, text=kind, response_url=url
                        )
                        elapsed = (time.perf_counter() - start) * 1000
                    if resp.status != 200:
                        errors.append(f"{name}: HTTP {resp.status} {resp.text[:80]}")
                    if record:
                        acks[kind].append(elapsed)

                await asyncio.gather(*(one(i, False) for i in range(WARMUP)))
                began = time.perf_counter()
                await asyncio.gather(*(one(i, True) for i in range(n)))
                wall = time.perf_counter() - began

                list_names = {name for name in sent_at if name.startswith("c") and "list" in name}

                def replied() -> set[str]:
                    return {
                        str(c.args.get("name"))
                        for c in slack.calls_to("response_url")
                        if c.done and c.args.get("name") in list_names
                    }

                try:
                    await slack.wait_until(lambda: replied() == list_names, timeout=60)
                except AssertionError:
                    errors.append(f"{len(list_names - replied())} list command(s) never answered")
                replies = [
                    (c.at - sent_at[str(c.args["name"])]) * 1000
                    for c in slack.calls_to("response_url")
                    if c.args.get("name") in list_names
                ]
    flush_redis()

    every = acks["help"] + acks["list"]
    print(f"/rollback ack latency: {len(every)} signed commands (help and list alternating), "
          f"concurrency {concurrency}, after {WARMUP} warm-up requests")  # fmt: skip
    print(f"{'':14}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}   (ms)")
    rows = [("all", every), ("help", acks["help"]), ("list", acks["list"])]
    if replies:
        rows.append(("list reply*", replies))
    for label, values in rows:
        if not values:
            continue
        figures = [percentile(values, q) for q in (50, 95, 99)] + [max(values)]
        print(f"{label:14}" + "".join(f"{v:9.1f}" for v in figures))
    print(f"throughput: {len(every) / wall:.0f} requests/s ({wall:.2f} s wall, "
          f"mean {statistics.fmean(every):.1f} ms)")  # fmt: skip
    if replies:
        print("* list reply: from sending the command to its answer reaching the response_url")
    if errors:
        print(f"errors: {len(errors)}")
        for line in errors[:10]:
            print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200, help="commands to send (max 5000)")
    parser.add_argument("--concurrency", type=int, default=10, help="in flight at once (max 50)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(bench(min(max(args.n, 1), 5000), min(max(args.concurrency, 1), 50)))


if __name__ == "__main__":
    main()
