"""The deploy watch on one local host: quiet deploys stay quiet, a bad one gets one proposal."""

from __future__ import annotations

from pathlib import Path

from tests.harness import SECRET
from tests.slack_fake import SlackFake, buttons, submit_view
from tests.watching import Upstream, local_app, proposals, report, wait_watch, watch_bot


async def test_a_healthy_deploy_produces_nothing_and_becomes_the_baseline(
    slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    async with (
        Upstream() as up,
        watch_bot(slack, redis_url, tmp_path, {"myapp": local_app(tmp_path, up.url)}) as bot,
    ):
        sent = await report(bot, "myapp", "v1.4.2", by="ci")
        assert sent["watch"] and sent["watching_for"] == 3
        watch = await wait_watch(bot, sent["watch"], lambda w: w.state.value != "watching")
        assert watch.state.value == "quiet"
        assert len(watch.ticks) == watch.ticks_planned == 13
        assert proposals(slack) == [] and up.count >= 13
        baseline = await bot.runtime.watches.store.baseline("myapp")
        assert baseline is not None and baseline.version == "v1.4.2"
        assert baseline.availability == 100 and baseline.p95_ms is not None


async def test_a_flapping_host_one_failed_probe_in_twenty_produces_nothing(
    slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    cfg = local_app(tmp_path, "", watch={"duration": "4.75s", "interval": "0.25s"})
    async with Upstream() as up:
        cfg["health"][0]["url"] = up.url
        up.fail = lambda n: n == 7
        async with watch_bot(slack, redis_url, tmp_path, {"myapp": cfg}) as bot:
            sent = await report(bot, "myapp", "v1.5.0")
            watch = await wait_watch(bot, sent["watch"], lambda w: w.state.value != "watching")
    samples = [s for t in watch.ticks for s in t.samples]
    assert len(samples) == 20 and sum(not s.ok for s in samples) == 1  # 95 % < 99 %, yet:
    assert watch.state.value == "quiet" and proposals(slack) == []


async def test_a_bad_deploy_gets_one_proposal_and_dismiss_asks_why(
    slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    cfg = local_app(tmp_path, "", watch={"duration": "3s", "interval": "0.25s"})
    async with Upstream() as up:
        cfg["health"][0]["url"] = up.url
        async with watch_bot(slack, redis_url, tmp_path, {"myapp": cfg}) as bot:
            good = await report(bot, "myapp", "v1.4.2")
            await wait_watch(bot, good["watch"], lambda w: w.state.value == "quiet")
            up.fail = lambda n: True
            bad = await report(bot, "myapp", "v1.5.0", by="ci", url="https://ci.example/run/9")
            watch = await wait_watch(bot, bad["watch"], lambda w: w.message is not None)
            assert watch.state.value == "proposed"
            [proposal] = proposals(slack)
            text = slack.all_text(proposal)
            assert (
                f"*myapp* `v1.5.0` looks bad since its deploy 0 min ago: {up.url} answers 500 "
                "(availability 0 %, was 100 %). Last good: `v1.4.2`." == proposal["text"]
            ), text
            assert "deployed by ci" in text and "https://ci.example/run/9" in text
            labels = [b.text for b in buttons(proposal)]
            assert labels == ["Roll back to v1.4.2", "Dismiss"]
            assert len(watch.ticks) == 2  # two failed probes in a row: no more needed

            # Someone who may not operate the app is refused before any modal opens.
            _, name = await bot.click(proposal, "Dismiss", "U0MALLORY")
            assert "not an operator" in await bot.reply(name)
            assert slack.views_opened == []

            _, name = await bot.click(proposal, "Dismiss", "U0CAROL")
            await slack.wait_until(lambda: len(slack.views_opened) == 1, what="the modal")
            view = slack.views_opened[0]
            empty = await submit_view(
                bot.session, bot.events_url, SECRET, view=view, user_id="U0CAROL",
                values={"why": {"why_text": "  "}},
            )  # fmt: skip
            assert empty.status == 200 and empty.json()["response_action"] == "errors"
            sent = await submit_view(
                bot.session, bot.events_url, SECRET, view=view, user_id="U0CAROL",
                values={"why": {"why_text": "the 500s are the upstream's maintenance"}},
            )  # fmt: skip
            assert sent.status == 200
            watch = await wait_watch(bot, bad["watch"], lambda w: w.answer is not None)
            assert watch.state.value == "dismissed"
            assert watch.answer is not None and watch.answer.user == "U0CAROL"
            assert watch.answer.why == "the 500s are the upstream's maintenance"
            await slack.wait_until(
                lambda: "Dismissed by <@U0CAROL>" in slack.all_text(proposals(slack)[0]),
                what="the proposal settled",
            )
            settled = proposals(slack)[0]
            assert buttons(settled) == []
            thread = slack.thread("C0INCIDENT", str(settled["ts"]))
            assert any("upstream's maintenance" in slack.all_text(m) for m in thread)
            # The buttons are gone; a replayed click changes nothing.
            _, name = await bot.click(proposal, "Roll back", "U0CAROL")
            assert "already answered" in await bot.reply(name)
            assert await bot.incident() is None
            slack.assert_no_errors()


async def test_a_newer_deploy_takes_the_proposal_back(
    slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    cfg = local_app(tmp_path, "", watch={"duration": "3s", "interval": "0.25s"})
    async with Upstream() as up:
        cfg["health"][0]["url"] = up.url
        up.fail = lambda n: True
        async with watch_bot(slack, redis_url, tmp_path, {"myapp": cfg}) as bot:
            await report(bot, "myapp", "v1.4.2")  # watched until the next deploy replaces it
            bad = await report(bot, "myapp", "v1.5.0")
            await wait_watch(bot, bad["watch"], lambda w: w.message is not None)
            up.fail = lambda n: False
            fixed = await report(bot, "myapp", "v1.5.1")
            old = await wait_watch(bot, bad["watch"], lambda w: w.state.value == "superseded")
            await slack.wait_until(
                lambda: any(
                    "No longer proposed: v1.5.1" in slack.all_text(m) for m in proposals(slack)
                ),
                what="the proposal taken back",
            )
            assert old.answer is not None and old.answer.user == "rewind"
            assert all(buttons(m) == [] for m in proposals(slack))
            new = await wait_watch(bot, fixed["watch"], lambda w: w.state.value == "quiet")
            assert new.last_good == "v1.4.2"  # the bad version in between is not "good"
