"""A failed release (issue 22): deploys reported with the same `release` id form a release;
when one of them looks bad, the watch proposes rolling back the release's group, and the click
opens one group incident that ends with every app on the version before the release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.workflow.model import Status
from tests.fixtures_hosts import MakeSshEnv
from tests.harness import running_bot, settings_env
from tests.slack_fake import SlackFake, buttons
from tests.test_group_rollback import members, wait_members
from tests.test_watch_rollback import watched
from tests.watching import TOKEN, proposals, report, wait_watch


@pytest.mark.timeout(400)
async def test_a_failed_release_proposes_rolling_back_its_group(
    slack: SlackFake, redis_url: str, tmp_path: Path, make_ssh_env: MakeSshEnv
) -> None:
    envs = {"storefront": make_ssh_env(1, ref="v1.4.2"), "api": make_ssh_env(1, ref="v1.4.2")}
    apps: dict[str, Any] = {name: watched(env) for name, env in envs.items()}
    path = tmp_path / "apps.yaml"
    data = {"apps": apps, "groups": {"shop": ["storefront", "api"]},
            "incidents": {"dir": str(tmp_path / "incidents")}}  # fmt: skip
    path.write_text(yaml.safe_dump(data))
    env = settings_env(slack, redis_url, path, tmp_path / "ws") | {"REWIND_API_TOKEN": TOKEN}
    async with running_bot(slack, env) as bot:
        for name in envs:
            good = await report(bot, name, "v1.4.2", by="ci")
            await wait_watch(bot, good["watch"], lambda w: w.state.value == "quiet")
        # CI releases v1.5.0 of both apps as release r42; its /healthz answers 500.
        for env_ in envs.values():
            env_.hosts[0].run("git checkout -q --force v1.5.0 && ./run.sh restart")
        await report(bot, "storefront", "v1.5.0", by="ci", release="r42")
        bad = await report(bot, "api", "v1.5.0", by="ci", release="r42")
        watch = await wait_watch(bot, bad["watch"], lambda w: w.message is not None)
        assert watch.group == "shop" and watch.release_apps == ["storefront", "api"]
        [proposal] = [p for p in proposals(slack) if "*api*" in p["text"]]
        assert "part of release `r42` (`storefront`, `api`)" in proposal["text"]
        assert "rolls back the group `shop`" in proposal["text"]

        _, name = await bot.click(proposal, "Roll back to v1.4.2", "U0CAROL")
        assert "opened" in await bot.reply(name)
        found = await members(bot)
        assert [(m.app, m.requested_version) for m in found] == [
            ("storefront", "v1.4.2"),  # the version its deploy events recorded before r42
            ("api", "v1.4.2"),
        ]
        # Each app compared with how it did before the release (its quiet watch measured it).
        assert [m.baseline.version if m.baseline else None for m in found] == ["v1.4.2"] * 2
        thread = found[0].thread
        assert thread is not None and found[1].thread == thread

        def decision() -> dict[str, Any] | None:  # in the group's thread (proposals came later)
            asks = [m for m in slack.thread("C0INCIDENT", thread.ts) if any(
                "Roll back" in b.text for b in buttons(m))]  # fmt: skip
            return asks[-1] if asks else None

        await slack.wait_until(lambda: decision() is not None, timeout=90, what="the decision")
        asked = decision()
        assert asked is not None
        await bot.click(asked, "Roll back", "U0CAROL")
        await wait_members(bot, Status.COMPLETED)
        for env_ in envs.values():
            assert env_.hosts[0].run("cat VERSION").strip() == "1.4.2"
            assert env_.hosts[0].health_status() == 200
