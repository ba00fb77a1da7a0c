"""The terminal front as a person meets it: `python -m bot rollback` in a pty (pexpect).

The sample app really runs on two local "hosts" (the demo's set-up, `ssh.transport: local`);
incidents live in the test Redis; Slack is unreachable (nothing listens at SLACK_API_URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest
import redis
import yaml
from rich.cells import cell_len

from bot.cli.demo import _prepare, demo_config
from bot.fronts.held_notices import deliver
from bot.sample.hosts import app_dir, stop_app
from bot.store.keys import HELD_NOTICES as KEY
from bot.store.stores import open_store
from tests.slack_fake import SlackFake

ROOT = Path(__file__).resolve().parent.parent
MARKUP = re.compile(r"<[@#!]|:[a-z_]+:(?!\d)")


@dataclass
class Site:
    root: Path
    config: dict[str, Any]
    env: dict[str, str]

    def write(self, people: bool = True, **changes: Any) -> None:
        app = {**self.config, **changes}
        data: dict[str, Any] = {
            "apps": {"myapp": app},
            "incidents": {"dir": str(self.root / "incidents")},
        }
        if people:
            data["people"] = {"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL"}
        (self.root / "apps.yaml").write_text(yaml.safe_dump(data))

    def spawn(self, *args: str) -> pexpect.spawn:
        return pexpect.spawn(
            sys.executable,
            ["-m", "bot", *args],
            env=self.env,
            cwd=str(self.root),
            encoding="utf-8",
            timeout=90,
            dimensions=(60, 200),
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args], env=self.env, cwd=self.root,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip


@pytest.fixture
def site(tmp_path: Path, redis_url: str) -> Iterator[Site]:
    hosts, origin = _prepare(tmp_path, io.StringIO())
    config = demo_config(tmp_path, hosts, origin)
    config["environment"] = "staging"
    config["approvers"] = ["U0ALICE", "U0CAROL"]
    config["monitor"] = {"duration": "1s", "interval": "0.5s"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    env |= {
        "PYTHONPATH": str(ROOT),
        "REWIND_CONFIG": str(tmp_path / "apps.yaml"),
        "REDIS_URL": redis_url,
        "REWIND_WORKSPACE": str(tmp_path / "ws"),
        "SLACK_BOT_TOKEN": "xoxb-unreachable",
        "SLACK_API_URL": "http://127.0.0.1:1/api/",
    }
    s = Site(tmp_path, config, env)
    s.write()
    yield s
    for workdir, _ in hosts.values():
        with contextlib.suppress(RuntimeError):
            stop_app(workdir)


def incident_id(text: str) -> str:
    found = re.search(r"python -m bot status ([0-9a-f]{6})", text)
    assert found, text[-2000:]
    return found.group(1)


def finish(child: pexpect.spawn) -> tuple[str, int]:
    child.expect(pexpect.EOF)
    child.close()
    return child.before or "", child.exitstatus if child.exitstatus is not None else -1


def test_enter_and_wrong_words_never_choose_ctrl_c_asks_and_twice_pauses(site: Site) -> None:
    child = site.spawn("rollback", "myapp", "v1.4.2")
    child.expect_exact("Why roll back?")
    child.sendline("")
    child.expect_exact("A reason is required")
    child.sendline("checkout returns 500")
    child.expect_exact("Roll back or fix forward?")
    child.expect(
        r"1\) Roll back to v1\.4\.2 \(revert merges\) \(recommended\)  "
        r"2\) Roll back to v1\.4\.2 \(take the tag\)  3\) Fix forward  4\) Abort"
    )
    child.expect_exact("Your choice [1-4]: ")
    child.sendline("")  # Enter: nothing is chosen, least of all Abort
    child.expect_exact("Nothing typed: type a number from 1 to 4")
    child.sendline("maybe")
    child.expect_exact("“maybe” is not a choice")
    child.sendline("7")
    child.expect_exact("“7” is not a choice")
    child.sendintr()
    child.expect_exact("Abort the incident? [y/N]")
    child.sendline("n")
    child.expect_exact("Your choice [1-4]: ")
    child.sendintr()
    child.expect_exact("Abort the incident? [y/N]")
    child.sendintr()
    out, status = finish(child)
    assert status == 130, out
    assert "paused, not aborted" in out
    assert "Traceback" not in child.before
    assert "Aborted" not in out
    ident = incident_id(out)
    assert f"python -m bot resume {ident}" in out
    shown = site.run("status", ident)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "waiting for the decision" in shown.stdout
    assert "(take the tag) / Fix forward / Abort" in shown.stdout
    assert not MARKUP.search(shown.stdout), shown.stdout
    listed = site.run("list")
    assert ident in listed.stdout and "myapp" in listed.stdout
    # Resumed from another terminal: the same question, answered this time.
    child = site.spawn("resume", ident)
    child.expect_exact("Roll back or fix forward?")
    child.expect_exact("Your choice [1-4]: ")
    child.sendline("fix forward")
    out, status = finish(child)
    assert status == 0, out[-2000:]
    assert "Fix forward chosen by" in out
    assert "closed: fix forward" in site.run("status", ident).stdout


def test_numbered_choices_all_the_way_with_slack_down(site: Site, redis_url: str) -> None:
    child = site.spawn("rollback", "myapp", "v1.4.2", "--reason", "checkout returns 500")
    child.expect_exact("Slack does not answer")
    child.expect_exact("NOT told yet")
    child.expect_exact("Your choice [1-4]: ")
    child.sendline("1")
    child.expect_exact("Database rollback of myapp needs approval")
    child.expect_exact("Your choice")
    child.sendline("approve downgrade")  # the button's words work too
    child.expect_exact("Approver's name or user id (alice, carol): ")
    child.sendline("bob")
    child.expect_exact("“bob” is not an approver of myapp. Approvers: alice, carol.")
    child.expect_exact("Your choice")
    child.sendline("1")
    child.expect_exact("Approver's name or user id")
    child.sendline("@alice")
    out, status = finish(child)
    assert status == 0, out[-3000:]
    assert "Recovered: myapp is back on v1.4.2" in out
    assert "Approved by @alice" in out
    assert "@alice approved the database downgrade." in out  # a Mention in a Message, by name
    assert "@@" not in out and "#@" not in out
    assert "Stakeholders NOT told yet (Slack unreachable): #C0STAKEHOLDERS" in out
    assert "Stakeholders told" not in out
    assert not MARKUP.search(out), MARKUP.search(out)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    held = r.lrange(KEY, 0, -1)
    assert len(held) == 1 and "C0STAKEHOLDERS" in held[0]

    async def later_slack_answers() -> SlackFake:
        async with SlackFake() as slack:
            stores = open_store(redis_url)
            try:
                assert await deliver(stores.held, stores.incidents, _client(slack)) == 1
            finally:
                await stores.aclose()
            return slack

    slack = asyncio.run(later_slack_answers())
    posted = [c.args for c in slack.calls_to("chat.postMessage")]
    assert posted and posted[0]["channel"] == "C0STAKEHOLDERS"
    assert "Held since" in posted[0]["text"] and "Since then" in posted[0]["text"]
    assert "Recovered" in posted[0]["text"]
    assert r.llen(KEY) == 0


def _client(slack: SlackFake) -> Any:
    from bot.fronts.slack.slack_api import make_client

    return make_client("xoxb-test", slack.api_url)


def test_production_needs_break_glass_refuses_yes_and_self_approval(
    site: Site, redis_url: str
) -> None:
    site.write(environment="production")
    refused = site.run("rollback", "myapp", "v1.4.2", "--reason", "500s")
    assert refused.returncode == 2
    assert "production" in refused.stdout and "--break-glass" in refused.stdout
    yes = site.run("rollback", "myapp", "v1.4.2", "--reason", "500s", "--break-glass", "--yes")
    assert yes.returncode == 2 and "--yes cannot be used" in yes.stdout
    assert redis.Redis.from_url(redis_url).keys("rewind:incident:*") == []

    child = site.spawn(
        "rollback", "myapp", "v1.4.2", "--reason", "checkout returns 500",
        "--break-glass", "--as", "carol",
    )  # fmt: skip
    child.expect_exact("Your choice [1-4]: ")
    child.sendline("1")
    child.expect_exact("must approve before")
    child.expect_exact("Your choice [1-2]: ")
    child.sendline("1")
    child.expect_exact("Approver's name or user id")
    child.sendline("carol")
    child.expect_exact("@carol started this rollback; myapp is production")
    child.expect_exact("Your choice [1-2]: ")
    child.sendline("1")
    child.expect_exact("Approver's name or user id")
    child.sendline("U0ALICE")
    child.expect_exact("Database rollback of myapp needs approval")
    child.expect_exact("Your choice")
    child.sendline("1")
    child.expect_exact("Approver's name or user id")
    child.sendline("alice")
    child.expect(r"\[web\d\]")  # a step is running: its commands' output streams
    child.sendintr()
    child.expect_exact("the running command finishes first")
    child.expect_exact("Abort the incident? [y/N]")
    child.sendline("y")
    out, status = finish(child)
    assert status == 1, out[-3000:]
    assert "Aborted" in out, out[-3000:]
    assert "Traceback" not in out

    async def timeline() -> list[dict[str, Any]]:
        stores = open_store(redis_url)
        try:
            [incident] = await stores.incidents.recent_incidents()
            assert incident.requested_by == "U0CAROL"
            return await stores.audit.timeline(incident.id)
        finally:
            await stores.aclose()

    entries = asyncio.run(timeline())
    text = "\n".join(str(e) for e in entries)
    assert "break-glass" in text
    assert re.search(r"OS user \w+@\S+", text), text
    assert "approve" in text and "U0ALICE" in text


async def test_with_slack_up_notices_are_posted_and_people_named_by_slack(
    site: Site, slack: SlackFake, redis_url: str
) -> None:
    slack.users["U0CAROL"] = {"profile": {"display_name": "carol.w", "real_name": "Carol W"}}
    site.write(people=False)  # every name below comes from users.info
    site.env["SLACK_API_URL"] = slack.api_url

    def run() -> tuple[str, int]:
        child = site.spawn(
            "rollback", "myapp", "v1.4.2", "--reason", "checkout returns 500", "--yes",
            "--as", "U0CAROL",
        )  # fmt: skip
        return finish(child)

    out, status = await asyncio.to_thread(run)
    assert status == 0, out[-3000:]
    assert "Slack does not answer" not in out
    assert "📣 Told #C0STAKEHOLDERS" in out
    assert "Stakeholders told: #C0STAKEHOLDERS" in out and "NOT told" not in out
    assert "@carol.w" in out and "U0CAROL" not in out
    assert not MARKUP.search(out), MARKUP.search(out)
    posted = [c.args for c in slack.calls_to("chat.postMessage")]
    assert [p["channel"] for p in posted].count("C0STAKEHOLDERS") == 2  # start and end
    assert redis.Redis.from_url(redis_url).llen(KEY) == 0


async def test_a_worker_that_reaches_slack_posts_the_held_notices(
    make_bot: Any, redis_url: str
) -> None:
    from bot.ports import HeldNotice

    stores = open_store(redis_url)
    try:
        notice = HeldNotice("abc123", "C0STAKEHOLDERS", "⏪ Rollback of myapp started",
                            "2026-01-01T03:00:00+00:00")  # fmt: skip
        await stores.held.hold(notice)
    finally:
        await stores.aclose()
    app = {
        "environment": "staging", "repo": "/tmp/none.git", "incident_channel": "C0INCIDENT",
        "operators": ["U0CAROL"], "ssh": {"transport": "local"},
        "hosts": [{"name": "web1", "address": "127.0.0.1"}],
        "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
    }  # fmt: skip
    async with make_bot({"myapp": app}) as bot:
        call = await bot.slack.wait_for(
            lambda c: c.method == "chat.postMessage" and c.args.get("channel") == "C0STAKEHOLDERS"
        )
    text = call.args["text"]
    assert text.startswith("(Held since 03:00 UTC: Slack could not be reached.) ⏪ Rollback")
    assert "The incident is no longer in Redis." in text
    assert redis.Redis.from_url(redis_url).llen(KEY) == 0


def test_ctrl_c_twice_while_a_step_runs_pauses_after_the_running_command(site: Site) -> None:
    child = site.spawn("rollback", "myapp", "v1.4.2", "--reason", "checkout returns 500")
    child.expect_exact("Your choice [1-4]: ")
    child.sendline("1")
    child.expect_exact("Database rollback of myapp needs approval")
    child.expect_exact("Your choice")
    child.sendline("1")
    child.expect_exact("Approver's name or user id")
    child.sendline("alice")
    child.expect(r"\[web\d\]")  # a step's commands are running
    child.sendintr()
    child.expect_exact("the running command finishes first")
    child.sendintr()
    out, status = finish(child)
    assert status == 130, out[-3000:]
    assert "Traceback" not in out and "Aborted" not in out
    assert "paused, not aborted (paused: Retry or Abort)" in out
    ident = incident_id(out)
    shown = site.run("status", ident)
    assert "stopped at the terminal (Ctrl-C twice)" in shown.stdout, shown.stdout
    assert "Retry" in shown.stdout and "Abort" in shown.stdout


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_with_redis_down_nothing_starts_and_nobody_is_told(
    site: Site, slack: SlackFake
) -> None:
    site.env["SLACK_API_URL"] = slack.api_url  # Slack answers: only Redis is missing
    site.env["REDIS_URL"] = f"redis://:s3cret@127.0.0.1:{_closed_port()}/0"
    args = ("rollback", "myapp", "v1.4.2", "--reason", "checkout returns 500", "--yes")
    proc = await asyncio.to_thread(site.run, *args)
    out = " ".join(proc.stdout.split())  # wrapped at 80 columns: the words, not the breaks
    assert proc.returncode == 1, out + proc.stderr
    assert "REDIS_URL" in out and "does not answer" in out and "Connect call failed" in out
    assert "nothing was started and nobody was told" in out
    assert '$ redis-cli -u "${REDIS_URL:-redis://localhost:6379/0}" ping || redis-server' in out
    assert "s3cret" not in out + proc.stderr  # never the password
    assert "Traceback" not in proc.stderr, proc.stderr
    assert slack.calls_to("chat.postMessage") == []
    for workdir in (site.root / "hosts").glob("*/myapp"):  # no host was touched
        version = subprocess.run(["git", "describe", "--tags"], cwd=app_dir(workdir), text=True,
                                 capture_output=True, check=True)  # fmt: skip
        assert version.stdout.strip() == "v1.5.0"


def test_plan_needs_no_break_glass_in_production(site: Site, redis_url: str) -> None:
    site.write(environment="production")
    proc = site.run("rollback", "myapp", "v1.4.2", "--reason", "500s", "--plan")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--break-glass" not in proc.stdout
    assert "Nothing was changed to make it." in proc.stdout
    assert redis.Redis.from_url(redis_url).keys("rewind:incident:*") == []
    # Running it for real still asks for break-glass.
    refused = site.run("rollback", "myapp", "v1.4.2", "--reason", "500s")
    assert refused.returncode == 2 and "--break-glass" in refused.stdout


def test_off_a_terminal_the_thread_is_a_compact_log_wrapped_not_cut(site: Site) -> None:
    args = ("rollback", "myapp", "v1.4.2", "--reason", "checkout returns 500", "--yes")
    proc = site.run(*args)  # stdout is a pipe
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    lines = out.splitlines()
    assert len(lines) < 120, len(lines)  # the whole panel on every change was 436 lines
    assert "Runbook checklist" not in out and "┌" not in out
    steps = ["Prerequisites", "Assess the situation", "Decide: roll back or fix forward",
             "Roll back code", "Back up database, preview downgrade", "Roll back database",
             "Redeploy previous version", "Verify rollback", "Monitor",
             "Incident report"]  # fmt: skip
    for step in steps:
        assert f"✅ {step}" in out, step
        assert out.count(f"✅ {step} —") + out.count(f"✅ {step}\n") == 1, step  # once each
    wide = [line for line in lines if cell_len(line) > 80]
    assert all(max(map(cell_len, line.split())) > 50 for line in wide), wide  # a path, whole
    assert "…" not in out  # wrapped, never cut
    joined = " ".join(line.strip() for line in lines)
    assert (
        "Roll back if the issue is severe and a fix will take time; fix forward if it is "
        "minor and the fix is quick." in joined
    )
    assert "Recovered: myapp is back on v1.4.2" in out


async def test_those_told_of_the_start_hear_that_it_stopped_and_why(
    site: Site, slack: SlackFake, own_redis: Any
) -> None:
    """Aborted at the prompt, then the store lost mid-way: each time the stakeholders' channel,
    told of the start, hears that the rollback stopped."""
    site.env["SLACK_API_URL"] = slack.api_url
    site.env["REDIS_URL"] = own_redis.url()

    def notices() -> list[str]:
        calls = slack.calls_to("chat.postMessage")
        return [c.args["text"] for c in calls if c.args.get("channel") == "C0STAKEHOLDERS"]

    def abort() -> tuple[str, int]:
        child = site.spawn("rollback", "myapp", "v1.4.2", "--reason", "checkout returns 500")
        child.expect_exact("Your choice [1-4]: ")
        child.sendline("4")
        child.expect_exact("Abort the incident? [y/N]")
        child.sendline("y")
        return finish(child)

    out, status = await asyncio.to_thread(abort)
    assert status == 1, out[-3000:]
    told = notices()
    assert len(told) == 2 and "started" in told[0], told
    assert "myapp" in told[1] and "aborted" in told[1].lower(), told[1]

    def store_lost() -> tuple[str, int]:
        child = site.spawn("rollback", "myapp", "v1.4.2", "--reason", "checkout returns 500")
        child.expect_exact("Your choice [1-4]: ")  # the start was told by now
        own_redis.stop()
        child.sendline("1")
        child.expect(pexpect.EOF, timeout=240)  # the store's client rides out a restart first
        child.close()
        return child.before or "", child.exitstatus if child.exitstatus is not None else -1

    out, status = await asyncio.to_thread(store_lost)
    assert status == 1, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    told = notices()[2:]
    assert len(told) == 2 and "started" in told[0], told
    assert "stopped before its end" in told[1] and "stopped answering" in told[1], told[1]
    assert "📣 Told #C0STAKEHOLDERS: ⏹ Rollback of myapp" in out
