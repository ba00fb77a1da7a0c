"""The deploy watch proposes a rollback when a metric fails, although every probe passes: the
bot as users start it, a real Prometheus scraping the sample app, the deploy reported over HTTP.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path

import pytest

from bot.sample.build import SampleRepo
from tests.prometheus_server import PROMETHEUS, PrometheusServer, SampleApp
from tests.slack_fake import SlackFake
from tests.test_signals import ERROR_RATE
from tests.watching import Upstream, local_app, proposals, report, wait_watch, watch_bot

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None and not Path(PROMETHEUS).exists(),
    reason="Debian's prometheus package is not installed (scripts/test.sh installs it)",
)


async def rate(prom: PrometheusServer) -> float | None:
    import aiohttp

    query = ERROR_RATE.replace("{app}", "myapp")
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{prom.url}/api/v1/query", params={"query": query}) as resp,
    ):
        body = await resp.json()
    found = body.get("data", {}).get("result", [])
    return float(found[0]["value"][1]) if found else None


async def test_a_failing_metric_gets_a_proposal_while_every_probe_passes(
    slack: SlackFake, redis_url: str, tmp_path: Path, sample_repo: SampleRepo
) -> None:
    sample = SampleApp(sample_repo, tmp_path)
    sample.deploy("v1.4.2")
    prom = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{sample.port}"])
    metric = {"name": "checkout error rate", "provider": "prometheus", "url": prom.url,
              "query": ERROR_RATE, "max": 0.01}  # fmt: skip
    cfg = local_app(tmp_path, "", watch={"duration": "40s", "interval": "0.5s"}, metrics=[metric])
    try:
        await prom.start()
        async with Upstream() as up, sample.traffic():
            cfg["health"][0]["url"] = up.url  # answers 200 all along
            deadline = time.monotonic() + 60
            while await rate(prom) != 0:
                assert time.monotonic() < deadline, "the good version's rate was never scraped"
                await asyncio.sleep(0.5)
            async with watch_bot(slack, redis_url, tmp_path, {"myapp": cfg}) as bot:
                sample.deploy("v1.5.0")  # answers 500 to users
                sent = await report(bot, "myapp", "v1.5.0", by="ci")
                watch = await wait_watch(bot, sent["watch"], lambda w: w.message is not None)
                [proposal] = proposals(slack)
                # What a rollback from this proposal is given: no quiet watch measured the
                # version before, yet the bad deploy's time is known, for "before" readings.
                known = await bot.runtime.incidents.watch.baseline_for("myapp")
    finally:
        prom.stop()
        sample.run_sh("stop")
    assert watch.state.value == "proposed"
    assert known is not None and known.deployed_at == watch.deploy.at and known.probes == 0
    assert all(s.ok for t in watch.ticks for s in t.samples) and up.count >= len(watch.ticks)
    [last] = watch.ticks[-1].signals
    assert (last.name, last.verdict, last.before) == ("checkout error rate", "failed", 0.0)
    assert last.value is not None and last.value > 0.01
    said = re.compile(r"checkout error rate [\d.]+ \(before the bad deploy 0; max 0\.01\)")
    assert said.fullmatch(watch.evidence), watch.evidence
    assert said.search(proposal["text"]), proposal["text"]
    # The watch's first failure is the metric's (no probe failed): the bench measures from it.
    first = next(t for t in watch.ticks if any(s.verdict == "failed" for s in t.signals))
    assert watch.first_failure_at == first.at
