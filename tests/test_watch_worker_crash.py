"""A worker killed (SIGKILL) during a watch: another worker, a real subprocess, goes on watching."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.harness import Bot
from tests.processes import Workers
from tests.slack_fake import SlackFake
from tests.watching import Upstream, local_app, proposals, report, wait_watch, watch_bot


async def test_a_watch_survives_its_worker(
    slack: SlackFake,
    redis_url: str,
    tmp_path: Path,
    workers_factory: Callable[[Bot], Workers],
) -> None:
    cfg = local_app(tmp_path, "", watch={"duration": "30s", "interval": "0.25s"})
    async with Upstream() as up:
        cfg["health"][0]["url"] = up.url
        async with watch_bot(slack, redis_url, tmp_path, {"myapp": cfg}, with_worker=False) as bot:
            workers = workers_factory(bot)
            workers.spawn("worker-A")
            sent = await report(bot, "myapp", "v1.5.0")
            await wait_watch(bot, sent["watch"], lambda w: len(w.ticks) >= 4)
            workers.kill("worker-A")
            before = len((await bot.runtime.watches.store.load(sent["watch"])).ticks)
            workers.spawn("worker-B")
            await wait_watch(
                bot, sent["watch"], lambda w: any(t.worker == "worker-B" for t in w.ticks)
            )
            up.fail = lambda n: True  # the deploy goes bad once worker-A is gone
            watch = await wait_watch(bot, sent["watch"], lambda w: w.message is not None)
    assert watch.state.value == "proposed"
    assert [t.n for t in watch.ticks] == list(range(len(watch.ticks)))  # no gap, no tick twice
    by = {t.worker for t in watch.ticks[:before]}
    assert by == {"worker-A"}
    assert {t.worker for t in watch.ticks[before:]} == {"worker-B"}
    assert len(proposals(slack)) == 1
