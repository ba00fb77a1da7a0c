"""`/rollback GROUP` end to end (issue 22): two apps, each with its own repo and sshd host,
sharing one PostgreSQL database, deployed together as a bad release (v1.5.0), driven by signed
Slack requests: one thread, one decision, each app in the group's order, the shared database
downgraded once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.workflow.model import Incident, Status, StepId
from bot.workflow.plan import Plan
from bot.workflow.said import NAMES_ITSELF
from tests.fixtures_hosts import MakeSshEnv, SshEnv
from tests.harness import Bot, running_bot, settings_env
from tests.processes import Workers
from tests.slack_fake import SlackFake
from tests.test_plan import READ_ONLY, _norm, sent
from tests.test_worker_crash import counting_app, runs
from tests.test_workflow_e2e import config, db_revision

V142, V150 = "b2c3d4e5f6a1", "d4e5f6a1b2c3"
START = "shop release 42 broke checkout"
DOWNGRADE = f"alembic -c alembic.ini downgrade {V142}"
PLAN_ID = re.compile(r"Plan ([0-9a-f]+): roll ([a-z]+) ")


@pytest.fixture
def release(make_ssh_env: MakeSshEnv, pg_database: str) -> tuple[SshEnv, SshEnv]:
    """storefront and api, each its own repo and host, one database at v1.5.0's head."""
    storefront = make_ssh_env(1, db_url=pg_database, migrate=True)
    api = make_ssh_env(1, db_url=pg_database)
    return storefront, api


def group_config(storefront: SshEnv, api: SshEnv) -> dict[str, Any]:
    apps = {}
    for name, env in (("storefront", storefront), ("api", api)):
        cfg = config(env)
        cfg["database"] = {**cfg["database"], "name": "shopdb"}
        if name == "api":  # its own stakeholders, and the storefront's too
            cfg["notify"] = ["C0APISTAKE", "C0STAKEHOLDERS"]
        apps[name] = cfg
    return {"apps": apps, "groups": {"shop": ["storefront", "api"]}}


@contextlib.asynccontextmanager
async def group_bot(
    slack: SlackFake, redis_url: str, tmp_path: Path, data: dict[str, Any], *, worker: bool = True
) -> AsyncIterator[Bot]:
    path = tmp_path / "apps.yaml"
    path.write_text(yaml.safe_dump({**data, "incidents": {"dir": str(tmp_path / "incidents")}}))
    env = settings_env(slack, redis_url, path, tmp_path / "ws")
    async with running_bot(slack, env, with_worker=worker) as bot:
        yield bot


async def members(bot: Bot) -> list[Incident]:
    """The group's member incidents, in the group's order."""
    found = [i for i in await bot.runtime.store.recent_incidents(10) if i.group is not None]
    leads = [i for i in found if i.group is not None and i.group.lead == i.id]
    if not leads or leads[0].group is None:
        return []
    loaded = [await bot.runtime.store.load(i) for i in leads[0].group.members]
    return [m for m in loaded if m is not None]


async def wait_members(bot: Bot, *statuses: Status, timeout: float = 240) -> list[Incident]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await members(bot)
        if found and all(m.status in statuses for m in found):
            return found
        assert asyncio.get_running_loop().time() < deadline, [(m.app, m.status) for m in found]
        await asyncio.sleep(0.2)


@pytest.mark.timeout(400)
async def test_a_group_rolls_back_both_apps_and_downgrades_the_shared_database_once(
    slack: SlackFake, redis_url: str, tmp_path: Path, release: tuple[SshEnv, SshEnv]
) -> None:
    storefront, api = release
    assert storefront.db_url and db_revision(storefront.db_url) == V150
    async with group_bot(slack, redis_url, tmp_path, group_config(storefront, api)) as bot:
        _, name = await bot.command(START)
        assert "opened" in await bot.reply(name)
        decision = await bot.gate("Roll back")
        await bot.click(decision, "Roll back", "U0CAROL")
        approval = await bot.gate("Approve downgrade", timeout=120)
        assert "coupon" in bot.slack.all_text(approval).lower()  # its own SQL preview
        await bot.click(approval, "Approve downgrade", "U0ALICE")
        web, back = await wait_members(bot, Status.COMPLETED)

        # Both apps on their previous version, the database downgraded once, by api's steps,
        # after storefront and api were redeployed: api keeps no releases, so in a scratch copy
        # of v1.5.0's commit that its backup step made on its host before its redeploy.
        for env in release:
            assert env.hosts[0].run("cat VERSION").strip() == "1.4.2"
            assert env.hosts[0].health_status() == 200
        assert db_revision(storefront.db_url) == V142
        assert [c for c in storefront.hosts[0].commands() if DOWNGRADE in c] == []
        assert len([c for c in api.hosts[0].commands() if DOWNGRADE in c]) == 1
        scratch = f"{api.workdir}/.git/rewind-downgrade-{back.id}"
        ran = sent(api.hosts[0])  # api's host's own log, in the order it ran them
        made = _index(ran, f"git archive --format=tar -o {scratch}.tar ")
        downgrade = _index(ran, DOWNGRADE)
        assert ran[downgrade].startswith(f"cd {scratch} && ")
        removed = ran.index(f"rm -rf -- {scratch} {scratch}.new {scratch}.tar")
        assert made < _index(ran, "git checkout") < _index(ran, "./run.sh restart") < downgrade
        assert downgrade < removed
        assert api.hosts[0].run(f"test -e {scratch} || echo gone").strip() == "gone"
        sf_redeployed = web.step(StepId.REDEPLOY).finished_at
        downgraded = back.step(StepId.DB_ROLLBACK).started_at
        assert sf_redeployed and downgraded and sf_redeployed < downgraded
        assert "downgraded once, by `api`" in web.step(StepId.DB_ROLLBACK).summary
        # The thread says when, and where.
        assert (
            "The shared database `shopdb` is backed up by `api` before its redeploy, with a "
            "scratch copy of the version rolled back from made on its host, and downgraded once, "
            "after `storefront` and `api` are redeployed: in that scratch copy" in bot.thread_text()
        )
        assert f"in the scratch copy `{scratch}`" in bot.thread_text()

        # One report for the group: each app's versions and timeline, one impact section.
        assert web.facts.report.path and not back.facts.report.path
        text = Path(web.facts.report.path).read_text()
        assert text.count("## Impact") == 1 and "## Versions" in text
        assert "| storefront | staging |" in text and "| api | staging |" in text
        assert "## `storefront`" in text and "## `api`" in text and text.count("### Timeline") == 2
        name = Path(web.facts.report.path).name
        await bot.slack.wait_until(lambda: any(f.filename == name for f in bot.slack.files),
                                   what="the report's file")  # fmt: skip
        (shared,) = [f for f in bot.slack.files if f.filename == name]
        # The group's own file names no member app (a member's files do).
        assert (shared.initial_comment or "").startswith("Incident report of the group:")
        # Every member frozen, every bad version quarantined (once each has ended).
        await bot.said(
            *(f"`{a}` is now frozen" for a in ("storefront", "api")),
            *(f"/api/freeze/{a}?version=v1.5.0" for a in ("storefront", "api")),
        )
        for app in ("storefront", "api"):
            async with bot.session.get(f"{bot.url}/api/freeze/{app}?version=v1.5.0") as resp:
                assert resp.status == 423, app
                assert (await resp.json())["quarantined"], app

        # The stakeholders of every app told once at the start and once at the end.
        for channel in ("C0STAKEHOLDERS", "C0APISTAKE"):
            notices = bot.slack.messages(channel)
            assert len(notices) == 2, (channel, [bot.slack.all_text(n) for n in notices])
            start, end = (" ".join(bot.slack.all_text(n).split()) for n in notices)
            # Of the group, not of its lead: its name and every app, in order, with its version.
            assert "Rollback of the release group *shop* started by" in start, start
            assert "*storefront* (staging) to" in start and "*api* (staging) to" in start, start
            assert start.index("*storefront*") < start.index("*api*")
            assert "Rollback of the release group *shop* completed" in end, end
            assert "*storefront* (staging) to `v1.4.2`, completed" in end, end
            assert "*api* (staging) to `v1.4.2`" in end, end

        # Several apps speak in the one thread: each message about one app names it first
        # (single apps: unchanged); only the group's own messages name none.
        await bot.said(*(f"`{a}` · *Monitoring done*" for a in ("storefront", "api")))
        thread = bot.thread_text()
        for said in (
            "`storefront` · *Assessment*", "`api` · *Assessment*",
            "`storefront` · Pushed `hotfix/rollback-storefront-", "`api` · Backup `myapp-",
            "*Database rollback of `api` needs approval.*",
            "`api` · alembic downgrade --sql", "`api` · Database downgraded on web1",
            "`api` · :white_check_mark: <@U0ALICE> approved the database downgrade.",
            "`storefront` · *Health checks*", "`api` · *Smoke tests*",
            "❄️ `storefront` is now frozen", "`api` · ⛔ `v1.5.0` is quarantined",
        ):  # fmt: skip
            assert said in thread, said
        # The group's own that name no app: the answer to its one decision, its report (its
        # decision, and the shared database's message, name the apps early on by themselves).
        group_own = ("<@U0CAROL> chose *Roll back*.", "Incident report of the group:")
        left = unnamed(bot, ("storefront", "api"))
        assert len(left) == 2 and all(x.startswith(group_own) for x in left), left
        # The one decision says what rolling back means for each app, the last assessed too.
        texts = [bot.slack.all_text(msg) for msg in bot.thread()]
        asked = "*Roll back or fix forward?* The group `shop` (`storefront`, `api`)."
        decision = next(x for x in texts if asked in x)
        for app in ("storefront", "api"):
            assert f"`{app}` (staging): `v1.5.0` → `v1.4.2`, " in decision, decision

        # One thread: every question in it; its parent has a row per app under each step.
        assert web.thread == back.thread
        assert len(bot.slack.messages("C0INCIDENT", top_level=True)) == 1
        parent = await bot.parent_shows("Rollback of the group shop: storefront, api", "`api`")
        assert parent.index("Redeploy previous version") < parent.index("`api`", parent.index(
            "Redeploy previous version"))  # fmt: skip
        bot.slack.assert_no_errors()


ANSWERED = re.compile(r"^\S+ .* by <@\w+> at \d\d:\d\d UTC$")  # a question, answered


def unnamed(bot: Bot, apps: tuple[str, ...]) -> list[str]:
    """The first line of each thread message that names none of `apps` at its start (a host's
    output: `Output from app/host`), nor early on by itself (`❄️ `api` is now frozen`)."""
    out = []
    for msg in bot.thread():
        first = next(x for x in bot.slack.all_text(msg).splitlines() if not ANSWERED.match(x))
        starts = any(first.startswith((f"`{a}` · ", f"Output from {a}/")) for a in apps)
        if not starts and not any(f"`{a}`" in first[:NAMES_ITSELF] for a in apps):
            out.append(first)
    return out


async def roll_back(bot: Bot) -> None:
    _, name = await bot.command(START)
    assert "opened" in await bot.reply(name)
    await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")


async def member(bot: Bot, app: str) -> Incident:
    return next(m for m in await members(bot) if m.app == app)


@pytest.mark.timeout(400)
async def test_a_member_whose_host_fails_pauses_the_group_and_abort_says_per_app(
    slack: SlackFake, redis_url: str, tmp_path: Path, release: tuple[SshEnv, SshEnv]
) -> None:
    storefront, api = release
    data = group_config(storefront, api)
    fetch = "echo 'web1: connection refused by the deploy agent' >&2; exit 1"
    data["apps"]["storefront"]["deploy"]["commands"]["fetch"] = fetch
    async with group_bot(slack, redis_url, tmp_path, data) as bot:
        await roll_back(bot)
        retry = await bot.gate("Retry", timeout=120)
        # The one thread says which app stopped.
        stopped = " ".join(bot.slack.all_text(retry).split())
        assert "`storefront` · ❌ *Redeploy previous version* stopped:" in stopped, stopped
        web, back = await members(bot)
        assert web.status is Status.PAUSED and web.step(StepId.REDEPLOY).status.value == "failed"
        assert back.status is Status.WAITING and back.gate is not None  # held: the group waits
        assert back.step(StepId.CODE).status.value == "waiting"
        await bot.click(retry, "Abort", "U0CAROL")
        web, back = await wait_members(bot, Status.ABORTED)
        # Per app, what was and was not rolled back; api was never touched.
        assert "Rolled back: Roll back code." in web.outcome
        assert "Stopped mid-way: Redeploy previous version" in web.outcome
        assert back.outcome.startswith("Stopped with its group (`storefront` was aborted).")
        assert "Rolled back: nothing." in back.outcome
        # Each member's end is said in the thread, in whichever order they end.
        await bot.said(
            "`api` · Aborted by",
            "Rolled back: nothing.",
            "Stopped mid-way: Redeploy previous version",
        )
        for env in release:  # neither app moved: both still on the bad release
            assert env.hosts[0].run("cat VERSION").strip() == "1.5.0"
        assert storefront.db_url and db_revision(storefront.db_url) == V150
        assert [c for c in api.hosts[0].commands() if "git checkout" in c] == []
        # One report for the aborted group, written once every app has ended.
        await bot.slack.wait_until(
            lambda: any("group-shop" in f.filename for f in bot.slack.files), what="report"
        )
        reports = sorted((tmp_path / "incidents").glob("*.md"))
        assert [r.name for r in reports] == [f.filename for f in bot.slack.files]
        assert len(reports) == 1 and "group-shop" in reports[0].name
        text = reports[0].read_text()
        assert "## `storefront`" in text and "## `api`" in text and text.count("## Impact") == 1
        assert "| storefront | staging |" in text and "aborted" in text
        # Every lock released: each app may be rolled back again.
        for app in ("storefront", "api"):
            assert await bot.runtime.store.lock_holder(app) is None


async def test_a_member_already_in_an_incident_refuses_the_group(
    slack: SlackFake, redis_url: str, tmp_path: Path, release: tuple[SshEnv, SshEnv]
) -> None:
    async with group_bot(slack, redis_url, tmp_path, group_config(*release)) as bot:
        _, first = await bot.command("api v1.4.2 its own trouble")
        assert "opened" in await bot.reply(first)
        busy = await bot.incident()
        _, name = await bot.command(START, user="U0ALICE")
        refusal = await bot.reply(name)
        assert "Nothing was started" in refusal and "`api` is busy" in refusal, refusal
        assert f"`api` already has an open incident `{busy.id}`" in refusal
        assert await bot.runtime.store.lock_holder("storefront") is None  # no partial lock
        assert [i.app for i in await bot.runtime.store.open_incidents()] == ["api"]


async def wait_step(bot: Bot, app: str, step: StepId, *statuses: str) -> Incident:
    deadline = asyncio.get_running_loop().time() + 180
    while True:
        found = [m for m in await members(bot) if m.app == app]
        if found and found[0].step(step).status.value in statuses:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, f"{app} {step} never {statuses}"
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def resumed_after_a_kill(
    slack: SlackFake,
    redis_url: str,
    tmp_path: Path,
    release: tuple[SshEnv, SshEnv],
    workers_factory: Callable[[Bot], Workers],
) -> AsyncIterator[tuple[Bot, Incident]]:
    """The group rolled back with its worker killed mid api's redeploy (the downgrade's approval
    comes after it), carried on by another: each member resumed, the downgrade run once. Yields
    the bot and api's incident, completed."""
    storefront, api = release
    data = group_config(storefront, api)
    cfg, count = counting_app(api, tmp_path)
    data["apps"]["api"]["database"]["alembic"] = cfg["database"]["alembic"]
    async with group_bot(slack, redis_url, tmp_path, data, worker=False) as bot:
        workers = workers_factory(bot)
        workers.spawn("worker-A")
        await roll_back(bot)
        await wait_step(bot, "api", StepId.REDEPLOY, "running")
        workers.kill("worker-A")
        workers.spawn("worker-B")
        await bot.click(await bot.gate("Approve downgrade", 180), "Approve downgrade", "U0ALICE")
        web, back = await wait_members(bot, Status.COMPLETED)
        assert back.step(StepId.REDEPLOY).worker == "worker-B"
        assert web.step(StepId.REDEPLOY).worker == "worker-A"  # done before: never run again
        assert "worker-B" in bot.thread_text() and "resumed" in bot.thread_text()
        assert runs(count) == 1  # the shared database was downgraded exactly once
        assert storefront.db_url and db_revision(storefront.db_url) == V142
        yield bot, back


@pytest.mark.timeout(400)
async def test_a_worker_killed_mid_group_another_resumes_each_member(
    slack: SlackFake,
    redis_url: str,
    tmp_path: Path,
    release: tuple[SshEnv, SshEnv],
    workers_factory: Callable[[Bot], Workers],
) -> None:
    async with resumed_after_a_kill(slack, redis_url, tmp_path, release, workers_factory):
        for env in release:
            assert env.hosts[0].run("cat VERSION").strip() == "1.4.2"


@pytest.mark.timeout(400)
async def test_run_this_plan_of_a_group_runs_every_command_it_names(
    slack: SlackFake, redis_url: str, tmp_path: Path, release: tuple[SshEnv, SshEnv]
) -> None:
    async with group_bot(slack, redis_url, tmp_path, group_config(*release)) as bot:
        _, name = await bot.command("plan shop")
        answer = await bot.reply(name, timeout=120)
        assert "of the group `shop`" in answer and "is posted" in answer, answer
        assert "Nothing was changed" in answer and "*Run this plan*" in answer
        group_id = answer.split("Plan `", 1)[1].split("`", 1)[0]
        # Posted as one app's plan is: one message in the incident channel, the plan its file.
        [posted] = bot.slack.messages("C0INCIDENT", top_level=True)
        said = bot.slack.all_text(posted)
        assert "Run this plan" in [b.text for b in bot.slack.buttons(posted)]
        [file] = [f for f in bot.slack.files if f.filename.startswith("rollback-plan-shop-")]
        assert file.channel_id == "C0INCIDENT" and file.thread_ts == posted["ts"]
        content = file.content.decode()
        assert content.startswith("# Rollback plan of the group `shop`")
        assert "2. `api` → `v1.4.2`: roll back code, back up the database" in content
        # Every member's plan in the file, in the group's order.
        sf, api_at = (content.index(f": {a} → v1.4.2") for a in ("storefront", "api"))
        assert 0 < sf < api_at, content
        # The order, in the plan: storefront first; the shared database once, by api, after it.
        assert (
            "1. `storefront` → `v1.4.2`: roll back code, (its database is downgraded by "
            "`api`), redeploy, verify." in said
        ), said
        assert (
            "2. `api` → `v1.4.2`: roll back code, back up the database `shopdb` and make a "
            "scratch copy of `v1.5.0`, redeploy, downgrade the database `shopdb` once (its own "
            "approval; after `storefront` and `api` are redeployed: in the scratch copy of "
            "`v1.5.0`, which still holds the newer revision files, then removed), verify." in said
        ), said
        ids = dict((app, plan_id) for plan_id, app in PLAN_ID.findall(said))
        plans = {}
        for app, plan_id in ids.items():
            raw = await bot.runtime.store.load_plan(plan_id)
            assert raw is not None
            plans[app] = Plan.model_validate_json(raw)
        assert set(plans) == {"storefront", "api"}
        assert plans["storefront"].database is None and plans["api"].database is not None
        # api keeps no releases: its backup step makes a scratch copy of v1.5.0 before its
        # redeploy; the downgrade runs in it after that redeploy, and removes it.
        api_cmds = plans["api"].commands
        names = [c.name for c in api_cmds]
        redeployed = max(i for i, c in enumerate(api_cmds) if c.step is StepId.REDEPLOY)
        assert names.index("backup check") < names.index("scratch copy") < redeployed
        downgrade = names.index("downgrade")
        assert redeployed < names.index("scratch copy marker") < downgrade
        assert downgrade < names.index("remove scratch copy")
        assert {api_cmds[downgrade].host, api_cmds[names.index("scratch copy")].host} == {"web1"}
        # Planning changed nothing: read-only commands only, no lock, no incident.
        for env in release:
            assert [c for c in sent(env.hosts[0]) if not READ_ONLY.match(c)] == []
            env.hosts[0].clear_commands()
        assert await bot.runtime.store.recent_incidents(5) == []

        # Run this plan: refused as `/rollback shop` refuses (rights on every app), no lock.
        _, name = await bot.click(posted, "Run this plan", "U0MALLORY")
        assert "needs this right on each of its apps" in await bot.reply(name)
        assert await bot.runtime.store.recent_incidents(5) == []
        assert await bot.runtime.store.lock_holder("storefront") is None
        # Clicked by an operator: the group as planned, each app under its plan's id; each
        # member's Assess compares with its own plan.
        _, name = await bot.click(posted, "Run this plan", "U0CAROL")
        opened = await bot.reply(name)
        assert f"The group `shop` opened from plan `{group_id}`" in opened, opened
        assert f"`api` → `v1.4.2` (incident `{ids['api']}`)" in opened, opened
        await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
        await bot.said(*(f"Nothing plan `{ids[a]}` depended on has changed" for a in ids))
        await bot.click(await bot.gate("Approve downgrade", 120), "Approve downgrade", "U0ALICE")
        done = await wait_members(bot, Status.COMPLETED)
        assert [(m.app, m.id) for m in done] == [(a, ids[a]) for a in ("storefront", "api")]
        for env in release:
            assert env.hosts[0].run("cat VERSION").strip() == "1.4.2"
        # A plan runs once; once it is no longer kept, the click says so and what to do.
        _, name = await bot.click(posted, "Run this plan", "U0CAROL")
        assert "This plan was already run" in await bot.reply(name)
        raw = await bot.runtime.store.load_plan(group_id)
        assert raw is not None
        await bot.runtime.store.save_plan(group_id, raw, 1)  # its time runs out
        for _ in range(100):  # Redis expires it within a second or two
            if await bot.runtime.store.load_plan(group_id) is None:
                break
            await asyncio.sleep(0.2)
        _, name = await bot.click(posted, "Run this plan", "U0CAROL")
        expired = await bot.reply(name)
        assert "is no longer kept" in expired and "`/rollback plan shop`" in expired, expired

    for incident, env in zip(done, release, strict=True):
        plan = plans[incident.app]
        host = env.hosts[0]
        ran = [_norm(c) for c in sent(host)]
        planned = {_norm(c.command) for c in plan.commands}
        assert ran and [r for r in ran if r not in planned] == [], incident.app
        must = {_norm(c.command) for c in plan.commands if c.name not in {"install"}}
        assert sorted(must - set(ran)) == [], incident.app


@pytest.mark.timeout(400)
def test_rewind_rollback_group_at_the_terminal(
    redis_url: str, tmp_path: Path, release: tuple[SshEnv, SshEnv]
) -> None:
    """`rewind rollback GROUP` (Slack down): the plan, then the group, in one run each."""
    storefront, api = release
    path = tmp_path / "apps.yaml"
    data = group_config(storefront, api)
    path.write_text(yaml.safe_dump({**data, "incidents": {"dir": str(tmp_path / "inc")}}))
    env = {
        **os.environ,
        "REWIND_CONFIG": str(path),
        "REDIS_URL": redis_url,
        "REWIND_WORKSPACE": str(tmp_path / "ws"),
    }

    def rewind(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "rollback", "shop", *args],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    planned = rewind("--plan")
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    assert "# Rollback plan of the group `shop`" in planned.stdout
    assert "2. `api` → `v1.4.2`: roll back code, back up the database" in planned.stdout
    assert "Nothing was changed" in planned.stdout
    bad = rewind("nope=v1.4.2", "--plan")
    assert bad.returncode == 2 and "I don't know an app called `nope`" in bad.stdout

    # A version for every member, as `/rollback shop storefront=… api=…` takes them in Slack.
    pins = ("storefront=v1.4.2", "api=v1.4.2")
    done = rewind(*pins, "--reason", "release 42 broke checkout", "--yes")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    for env_ in release:
        assert env_.hosts[0].run("cat VERSION").strip() == "1.4.2"
    assert storefront.db_url and db_revision(storefront.db_url) == V142
    assert len([c for c in api.hosts[0].commands() if DOWNGRADE in c]) == 1


def _index(commands: list[str], part: str) -> int:
    found = [i for i, c in enumerate(commands) if part in c]
    assert len(found) == 1, (part, found)
    return found[0]
