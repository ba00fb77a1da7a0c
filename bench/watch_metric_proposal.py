"""Time from the first failing scrape of a deploy's error rate to Rewind's proposal in Slack.

The metric twin of `bench/watch_proposal.py` (the probe-based watch). The sample app serves
users' traffic on 127.0.0.1 and a real Prometheus (Debian's `prometheus`) scrapes its
`/metrics` every second; the watched app's health URL answers 200 all along, so only the metric
can find the deploy bad. For each run: v1.4.2 runs until its error rate reads 0, v1.5.0
(answering 500) is deployed and reported through `POST /api/deploys`, the bench polls
Prometheus every 50 ms for the first moment the error rate is over `max`, and records when the
proposal's `chat.postMessage` reached Slack.

    python bench/watch_metric_proposal.py [--runs 3] [--interval 1.0]

The watch needs the metric failed in 2 ticks in a row (`watch.failures`), so about one
`watch.interval` of the figure is by design. Prints figures; asserts nothing.
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

import aiohttp  # noqa: E402

from bench.watch_proposal import flush_redis, redis_url  # noqa: E402
from bot.sample.build import build_sample_origin  # noqa: E402
from tests.prometheus_server import PrometheusServer, SampleApp  # noqa: E402
from tests.slack_fake import SlackFake  # noqa: E402
from tests.watching import Upstream, local_app, proposals, report, watch_bot  # noqa: E402

ERROR_RATE = (
    '(sum(rate(http_requests_total{job="myapp",code=~"5.."}[5s])) or vector(0))'
    ' / sum(rate(http_requests_total{job="myapp"}[5s]))'
)
MAX = 0.01


async def rate(session: aiohttp.ClientSession, prom: PrometheusServer) -> float | None:
    async with session.get(f"{prom.url}/api/v1/query", params={"query": ERROR_RATE}) as resp:
        found = (await resp.json()).get("data", {}).get("result", [])
    return float(found[0]["value"][1]) if found else None


async def until(session: aiohttp.ClientSession, prom: PrometheusServer, bad: bool) -> float:
    """When the error rate first reads bad (over MAX) or good (0), polled every 50 ms."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        value = await rate(session, prom)
        if value is not None and ((value > MAX) if bad else (value == 0)):
            return time.time()
        await asyncio.sleep(0.05)
    raise TimeoutError("the error rate never read " + ("bad" if bad else "0"))


async def bench(runs: int, interval: float) -> list[float]:
    flush_redis()
    delays: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rewind-bench-") as tmp:
        root = Path(tmp)
        sample = SampleApp(build_sample_origin(root / "sample"), root)
        sample.deploy("v1.4.2")
        prom = PrometheusServer(root / "prometheus", [f"127.0.0.1:{sample.port}"])
        try:
            await prom.start()
            async with Upstream() as up, sample.traffic(), aiohttp.ClientSession() as session:
                metric = {"name": "checkout error rate", "provider": "prometheus",
                          "url": prom.url, "query": ERROR_RATE, "max": MAX}  # fmt: skip
                watch = {"duration": f"{interval * 60}s", "interval": f"{interval}s"}
                apps = {"myapp": local_app(root / "app", up.url, watch=watch, metrics=[metric])}
                async with SlackFake() as slack, watch_bot(slack, redis_url(), root, apps) as bot:
                    for n in range(1, runs + 1):
                        sample.deploy("v1.4.2")
                        await until(session, prom, bad=False)
                        sample.deploy("v1.5.0")
                        await report(bot, "myapp", "v1.5.0")
                        failing = await until(session, prom, bad=True)
                        await slack.wait_until(lambda n=n: len(proposals(slack)) == n,
                                               timeout=interval * 30 + 60)  # fmt: skip
                        posted = [c.at for c in slack.calls_to("chat.postMessage")
                                  if "looks bad" in str(c.args.get("text"))]  # fmt: skip
                        delays.append(posted[-1] - failing)
        finally:
            prom.stop()
            sample.run_sh("stop")
    flush_redis()
    return delays


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    runs = max(1, min(args.runs, 20))
    interval = max(0.5, min(args.interval, 10.0))
    logging.basicConfig(level=logging.WARNING)
    began = time.perf_counter()
    ms = sorted(d * 1000 for d in asyncio.run(bench(runs, interval)))
    print(f"first failing scrape of the error rate -> proposal in Slack: {runs} deploy(s), "
          f"watch.interval {interval:g} s, the metric failed in 2 ticks in a row")  # fmt: skip
    print(f"  median {statistics.median(ms):.0f} ms, min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms")
    print("  (the probe-based watch: bench/watch_proposal.py, same interval)")
    print(f"({time.perf_counter() - began:.1f} s wall)")


if __name__ == "__main__":
    main()
