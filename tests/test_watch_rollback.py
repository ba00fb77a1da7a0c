"""A bad deploy on real SSH hosts: reported, watched, proposed, rolled back, quarantined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures_hosts import SshEnv
from tests.harness import Bot
from tests.slack_fake import SlackFake, buttons
from tests.test_workflow_e2e import config
from tests.watching import proposals, report, wait_watch, watch_bot


def watched(env: SshEnv) -> dict[str, Any]:
    cfg = config(env)
    for host, test_host in zip(cfg["hosts"], env.hosts, strict=True):
        host["vars"] = {"app_port": str(test_host.app_port)}
    cfg["health"] = [
        {"url": "http://127.0.0.1:{app_port}/healthz", "status": 200},
        {"url": "http://127.0.0.1:{app_port}/api/health", "json": {"status": "ok"}},
    ]
    cfg["watch"] = {"duration": "2s", "interval": "0.5s"}
    return cfg


async def gate(bot: Bot, query: str = "") -> tuple[int, dict[str, Any]]:
    async with bot.session.get(f"{bot.url}/api/freeze/myapp{query}") as resp:
        return resp.status, await resp.json()


async def test_bad_deploy_proposed_rolled_back_and_quarantined(
    slack: SlackFake, redis_url: str, tmp_path: Path, make_ssh_env: Any
) -> None:
    env: SshEnv = make_ssh_env(ref="v1.4.2")
    async with watch_bot(slack, redis_url, tmp_path, {"myapp": watched(env)}) as bot:
        good = await report(bot, "myapp", "v1.4.2", by="ci")
        await wait_watch(bot, good["watch"], lambda w: w.state.value == "quiet")
        assert proposals(slack) == []  # a healthy deploy: nothing said

        for host in env.hosts:  # CI deploys v1.5.0, whose /healthz answers 500
            host.run("git checkout -q --force v1.5.0 && ./run.sh restart")
        bad = await report(bot, "myapp", "v1.5.0", by="ci")
        watch = await wait_watch(bot, bad["watch"], lambda w: w.message is not None)
        [proposal] = proposals(slack)
        assert proposal["text"].startswith(
            "*myapp* `v1.5.0` looks bad since its deploy 0 min ago: /healthz answers 500 on "
            "web1 and web2; /api/health answers 500 on web1 and web2 (availability 0 %, was 100 %"
        ), proposal["text"]
        assert proposal["text"].endswith("Last good: `v1.4.2`.")

        _, name = await bot.click(proposal, "Roll back to v1.4.2", "U0CAROL")
        assert "opened" in await bot.reply(name)
        incident = await bot.incident()
        assert incident.requested_by == "U0CAROL" and incident.requested_version == "v1.4.2"
        assert "looks bad" in incident.reason and "/healthz answers 500" in incident.reason
        assert incident.baseline is not None and incident.baseline.version == "v1.4.2"
        await slack.wait_until(
            lambda: "<@U0CAROL> chose" in slack.all_text(proposals(slack)[0]), what="settled"
        )
        assert buttons(proposals(slack)[0]) == []
        assert (await bot.runtime.watches.store.load(watch.id)).state.value == "rolling_back"

        # While the incident is open, CI's routine deploys wait; the responders' fix goes out.
        status, body = await gate(bot)
        assert status == 423 and body["incident"] == incident.id
        assert (await gate(bot, f"?incident={incident.id}"))[0] == 200
        assert (await gate(bot, "?incident=ffffff"))[0] == 423

        await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
        done = await bot.wait_status("completed", timeout=120)
        for host in env.hosts:
            assert host.health_status() == 200
        await bot.said("before the bad deploy", "(v1.4.2)")
        assert "before the bad deploy" in done.step("monitor").summary
        report_md = Path(done.facts.report.path).read_text()
        assert "Compared with before the bad deploy: p95" in report_md

        # The bad version is quarantined, even after the freeze is lifted.
        await slack.wait_until(lambda: "`v1.5.0` is quarantined" in bot.thread_text())
        status, body = await gate(bot, "?version=v1.5.0")
        assert status == 423 and body["quarantined"] and body["incident"] == done.id
        assert body["by"] == "U0CAROL" and "looks bad" in body["reason"] and body["link"]
        _, name = await bot.command("unfreeze myapp", user="U0ALICE")
        assert "unfrozen" in await bot.reply(name)
        assert (await gate(bot))[0] == 200
        assert (await gate(bot, "?version=v1.5.1"))[0] == 200
        assert (await gate(bot, "?version=v1.5.0"))[0] == 423
        _, name = await bot.command("release myapp v1.5.0", user="U0CAROL")
        assert "Only an approver" in await bot.reply(name)
        _, name = await bot.command("release myapp v1.5.0", user="U0ALICE")
        assert "released by <@U0ALICE>" in await bot.reply(name)
        assert (await gate(bot, "?version=v1.5.0"))[0] == 200
        timeline = await bot.runtime.store.timeline(done.id)
        assert any(e["who"] == "U0ALICE" and "released v1.5.0" in e["what"] for e in timeline)
        slack.assert_no_errors()
