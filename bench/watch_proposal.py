"""Time from a deploy's first failed health probe to Rewind's proposal in the incident channel.

Starts the bot in this process as the tests do (`tests/harness.py`: the aiohttp endpoint on
127.0.0.1, a real Redis of its own, the Slack fake, one in-process worker), with apps on
`ssh.transport: local` whose health URL is a local server the bench controls. For each run: a
deploy is reported through `POST /api/deploys`, the health URL starts answering 500 at a random
moment within the first interval, and the bench records when the first 500 went out and when
the proposal's `chat.postMessage` reached Slack.

    python bench/watch_proposal.py [--runs 5] [--interval 1.0]

The default thresholds need two failed probes in a row, so about one `watch.interval` of the
figure is by design; the rest is Rewind's own work. Prints figures; asserts nothing. Traffic
goes to 127.0.0.1 only. Its Redis is one it starts (or `python -m bench`'s private one).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from tests.slack_fake import SlackFake  # noqa: E402
from tests.watching import Upstream, local_app, proposals, report, watch_bot  # noqa: E402

REDIS_URL = ""  # python -m bench sets its private Redis; else one of our own (never 6379's)


def redis_url() -> str:
    global REDIS_URL
    if not REDIS_URL:
        from tests.redis_servers import session_redis_url  # stopped when the process exits

        REDIS_URL = session_redis_url(8)
    return REDIS_URL


def flush_redis() -> None:
    client = redis.Redis.from_url(redis_url())
    try:
        client.flushdb()
    finally:
        client.close()


async def bench(runs: int, interval: float) -> list[float]:
    flush_redis()
    delays: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rewind-bench-") as tmp:
        root = Path(tmp)
        ups = [Upstream() for _ in range(runs)]
        for up in ups:
            await up.__aenter__()
        try:
            watch = {"duration": f"{interval * 40}s", "interval": f"{interval}s"}
            apps = {
                f"app{i}": local_app(root / f"app{i}", up.url, watch=watch)
                for i, up in enumerate(ups)
            }
            async with SlackFake() as slack, watch_bot(slack, redis_url(), root, apps) as bot:
                for i, up in enumerate(ups):
                    await report(bot, f"app{i}", "v1.5.0")
                    await asyncio.sleep(random.uniform(0, interval))
                    up.fail = lambda n: True
                    await slack.wait_until(
                        lambda n=i + 1: len(proposals(slack)) == n, timeout=interval * 20 + 30
                    )
                    posted = next(
                        c.at
                        for c in slack.calls_to("chat.postMessage")
                        if f"*app{i}*" in str(c.args.get("text"))
                    )
                    delays.append(posted - up.failures[0])
        finally:
            for up in ups:
                await up.__aexit__()
    flush_redis()
    return delays


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    runs = max(1, min(args.runs, 50))
    interval = max(0.1, min(args.interval, 10.0))
    logging.basicConfig(level=logging.WARNING)
    began = time.perf_counter()
    delays = asyncio.run(bench(runs, interval))
    ms = sorted(d * 1000 for d in delays)
    print(f"first failed probe -> proposal in Slack: {runs} deploy(s), watch.interval "
          f"{interval:g} s, default thresholds (2 failed probes in a row)")  # fmt: skip
    print(f"  median {statistics.median(ms):.0f} ms, min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms")
    print(f"  beyond the one interval the thresholds wait by design: median "
          f"{statistics.median(ms) - interval * 1000:.0f} ms")  # fmt: skip
    print(f"({time.perf_counter() - began:.1f} s wall)")


if __name__ == "__main__":
    main()
