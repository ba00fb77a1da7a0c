"""The deploy watch reads an app through the checks' one registry: its logs are a check like
the rest, read over the runner since the deploy; logs that cannot be read are said, never
counted as clean."""

from __future__ import annotations

from pathlib import Path

from tests.slack_fake import SlackFake
from tests.watching import Upstream, local_app, proposals, report, wait_watch, watch_bot


async def test_error_lines_in_the_logs_get_a_proposal_while_every_probe_passes(
    slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    async with Upstream() as up:  # answers 200 all along
        cfg = local_app(tmp_path, up.url, watch={"duration": "20s", "interval": "0.25s"})
        # No timestamps and no `{since}`: every line the command returns counts.
        (tmp_path / "web1" / "app.log").write_text("ERROR checkout: pool exhausted\n" * 25)
        async with watch_bot(slack, redis_url, tmp_path, {"myapp": cfg}) as bot:
            sent = await report(bot, "myapp", "v1.5.0", by="ci")
            watch = await wait_watch(bot, sent["watch"], lambda w: w.message is not None)
    [proposal] = proposals(slack)
    assert watch.state.value == "proposed"
    assert all(s.ok for t in watch.ticks for s in t.samples) and up.count >= len(watch.ticks)
    assert watch.ticks[-1].errors == {"web1": 25} and not watch.ticks[-1].log_problems
    assert watch.evidence.startswith("25 error line(s) in the logs of web1"), watch.evidence
    assert "25 error line(s) in the logs of web1" in proposal["text"]


async def test_logs_that_cannot_be_read_are_said_and_never_read_as_clean(
    slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    async with Upstream() as up:
        cfg = local_app(tmp_path, up.url, watch={"duration": "1s", "interval": "0.25s"})
        cfg["deploy"]["commands"]["logs"] = "cat no-such.log"
        async with watch_bot(slack, redis_url, tmp_path, {"myapp": cfg}) as bot:
            sent = await report(bot, "myapp", "v1.5.0", by="ci")
            watch = await wait_watch(bot, sent["watch"], lambda w: not w.state.ticking)
    assert watch.ticks and all(not t.errors for t in watch.ticks)
    assert {t.log_problems["web1"] for t in watch.ticks} == {"`logs` failed (exit 1)"}
