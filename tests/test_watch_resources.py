"""The deploy watch reads each host's `resources:` over the runner it reads the logs with, and a
failing one proposes a rollback while every probe passes; the watch's first failure is then the
signal's, not a probe's (the bench measures from it)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.slack_fake import SlackFake
from tests.watching import Upstream, local_app, proposals, report, wait_watch, watch_bot


async def test_a_host_over_its_disk_threshold_gets_a_proposal_while_every_probe_passes(
    slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    # Any real disk holding the workdir is above 0.01 % used; CPU and memory cannot fail at 100.
    limits = {"cpu": 100, "memory": 100, "disk": 0.01}
    async with Upstream() as up:  # answers 200 all along
        cfg = local_app(tmp_path, up.url, watch={"duration": "20s", "interval": "0.25s"},
                        resources=limits)  # fmt: skip
        async with watch_bot(slack, redis_url, tmp_path, {"myapp": cfg}) as bot:
            sent = await report(bot, "myapp", "v1.5.0", by="ci")
            watch = await wait_watch(bot, sent["watch"], lambda w: w.message is not None)
    [proposal] = proposals(slack)
    assert watch.state.value == "proposed"
    assert all(s.ok for t in watch.ticks for s in t.samples) and up.count >= len(watch.ticks)
    [usage] = watch.ticks[-1].signals
    assert (usage.name, usage.provider, usage.verdict) == ("resources on web1", "resources",
                                                           "failed")  # fmt: skip
    assert usage.value is not None and usage.value > 0.01
    said = re.compile(r"resources on web1 [\d.]+ % \(max 0\.01 %\): disk")
    assert said.match(watch.evidence), watch.evidence
    assert said.search(proposal["text"]), proposal["text"]
    # The first failure is the first tick whose signal failed, though no probe ever did.
    first = next(t for t in watch.ticks if any(s.verdict == "failed" for s in t.signals))
    assert watch.first_failure_at == first.at
