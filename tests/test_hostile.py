"""Hostile input through the real endpoint: one bot, two real SSH hosts, for the whole module.

An incident of `myapp` (production) waits at its decision with a reason full of shell and
unicode tricks. Then generated requests — forged, stale, replayed or unsigned, with hostile
values in every field of the command and of the button payload — must each get a clear answer
or a 401, open nothing, change nothing, and run nothing on the hosts (their sshd records every
command). Refused buttons are audited; no secret ever shows in a log, a Slack call, a report or
/metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.fronts.command import parse
from tests.conftest import own_redis_url
from tests.fixtures_hosts import SshEnv, SshKeys, pg_admin_url, ssh_env_factory
from tests.harness import INCIDENT_CHANNEL, SECRET, Bot, running_bot, settings_env, write_apps
from tests.slack_fake import (
    SentResponse,
    SlackFake,
    block_actions_payload,
    buttons,
    sign,
)

# One world for the module, its tests in order on one test process (scripts/test.sh runs xdist
# with --dist loadfile): the later tests read what the earlier ones left.
pytestmark = pytest.mark.asyncio(loop_scope="module")

SENT: list[str] = []  # the kinds of the generated requests sent, in order
MARK = "pwn"  # in every hostile value, so the hosts' command log can be searched for them
BOT_TOKEN = "xoxb-4242-hostile-bot-token-9c1f"
APP_TOKEN = "xapp-1-A0REWIND-hostile-app-token-5e2d"
REDIS_PASSWORD = "redis-pw-7d1e0b"
DB_PASSWORD = "db-pw-Hunter2x"
HOSTILE_REASON = f"checkout 500 ; rm -rf / $(touch /tmp/{MARK}) `id` | nc x 1 \n\0 ；{MARK}‮txt.exe‬ ‏"


@dataclass(repr=False)
class World:
    bot: Bot
    env: SshEnv
    incident_id: str
    decision: dict[str, Any]
    baseline_commands: list[list[str]]
    logs: list[str] = field(default_factory=list)
    incidents_dir: Path = field(default_factory=Path)

    def __repr__(self) -> str:
        return f"World(incident {self.incident_id})"


class _Capture(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.append(f"{record.levelname} {record.name} {self.format(record)}")
        except Exception:  # a record that cannot be formatted is itself worth seeing
            self.sink.append(f"{record.levelname} {record.name} {record.msg!r} {record.args!r}")


@pytest.fixture(scope="module")
def hosts(ssh_keys: SshKeys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshEnv]:
    with ssh_env_factory(ssh_keys, tmp_path_factory.mktemp("hostile")) as make:
        yield make(2)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"rewind_hostile_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_host() -> str:
    """host:port of the session's own PostgreSQL."""
    return pg_admin_url().split("@", 1)[1].split("/", 1)[0]


def app_configs(env: SshEnv, db: str) -> dict[str, Any]:
    # A database URL with a password (PostgreSQL here trusts 127.0.0.1, so any password works)
    # inside the apps file's commands: it must never reach Slack, a report or a log.
    url = f"postgresql+psycopg://postgres:{DB_PASSWORD}@{pg_host()}/{db}"
    libpq = f"postgresql://postgres:{DB_PASSWORD}@{pg_host()}/{db}"
    myapp = env.app_config()
    myapp["environment"] = "production"
    myapp["operators"] = ["U0CAROL"]
    myapp["approvers"] = ["U0ALICE", "U0BOB"]
    myapp["database"] = {
        "run_on": "web1",
        "alembic": f"env DATABASE_URL={url} alembic -c alembic.ini",
        "backup": f"pg_dump {libpq} > {{backup}}",
        "restore": f"psql -q {libpq} < {{backup}}",
        "verify": f"psql {libpq} -tAc 'SELECT 1'",
        "backups": "ls -1t /nonexistent/*.sql",
    }
    other = env.app_config()
    other["operators"] = ["U0OTHER"]
    other["approvers"] = ["U0OTHER"]
    return {"myapp": myapp, "otherapp": other}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    hosts: SshEnv, database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    url = f"postgresql+psycopg://postgres:{DB_PASSWORD}@{pg_host()}/{database}"
    hosts.hosts[0].run(f"env DATABASE_URL={url} alembic -c alembic.ini upgrade head")
    tmp = tmp_path_factory.mktemp("hostile-bot")
    store_url = own_redis_url()
    plain = redis.Redis.from_url(store_url)
    plain.flushdb()
    logs: list[str] = []
    capture = _Capture(logs)
    capture.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        async with SlackFake() as slack:
            config = write_apps(tmp / "apps.yaml", app_configs(hosts, database), tmp / "incidents")
            env = settings_env(slack, store_url, config, tmp / "workspace")
            # Real secrets' shapes: each must stay out of every log, message, report, metric.
            env["SLACK_BOT_TOKEN"] = BOT_TOKEN
            env["SLACK_APP_TOKEN"] = APP_TOKEN
            env["REDIS_URL"] = store_url.replace("redis://", f"redis://default:{REDIS_PASSWORD}@")
            async with running_bot(slack, env) as bot:
                _, name = await bot.command(f"myapp v1.4.2 {HOSTILE_REASON}", user="U0ALICE")
                assert "opened" in await bot.reply(name, timeout=60)
                decision = await bot.gate("Roll back", timeout=90)
                incident = await bot.incident()
                await bot.runtime.notifier.flush(incident)
                baseline = [h.commands() for h in hosts.hosts]
                assert all(baseline), "assess ran on every host"
                yield World(bot, hosts, incident.id, decision, baseline, logs, tmp / "incidents")
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
        plain.flushdb()
        plain.close()


# ------------------------------------------------------------------------------ generators

_TRICKS = [
    ";", "&&", "|", "$(id)", "`id`", "${IFS}", ">", "<", "'", '"', "\\", "\n", "\r\n", "\0",
    "\t", "；", "｜", "＄（id）", "\u202e", "\u200f", "\u200b", "\ufeff", "..", "../../etc/passwd",
    "%0a", "*", "?", "~", "#", "!", "<!channel>", "<@U0ALICE>", "--", "-rf", " ",
]  # fmt: skip


@st.composite
def hostile(draw: st.DrawFn) -> str:
    """A value built from shell metacharacters, control characters and look-alikes, with the
    marker in it; sometimes about 10 kB long."""
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(_TRICKS),
                st.text(min_size=1, max_size=8),
                st.just(MARK),
            ),
            min_size=1,
            max_size=8,
        )
    )
    value = "".join(parts) + MARK
    if draw(st.integers(0, 9)) == 0:
        value = (value * (10_000 // len(value) + 1))[:10_240]
    return value


COMMAND_FIELDS = ("text", "user_id", "channel_id", "team_id", "trigger_id", "command", "user_name")
TEXT_SHAPES = (
    "{v}",
    "myapp {v}",
    "myapp v1.4.2 {v}",
    "{v} v1.4.2 reason",
    "status {v}",
    "cancel {v}",
    "unfreeze {v}",
    "myapp {v} checkout 500",
    "otherapp v1.4.2 {v}",
)
ACTION_FIELDS = ("action_id", "value", "value.i", "value.t", "value.o", "user", "channel",
                 "message_ts", "block_id", "trigger_id", "team", "type")  # fmt: skip
SIGNATURE_FAULTS = ("forged", "other body", "stale", "future", "no timestamp", "no signature",
                    "no headers", "bad timestamp", "v1 signature")  # fmt: skip


@dataclass
class Request:
    kind: str  # command | action | signature | replay | garbage
    fields: dict[str, str] = field(default_factory=dict)
    fault: str = ""
    value: str = ""

    def __repr__(self) -> str:
        cut = {k: v[:80] + ("…" if len(v) > 80 else "") for k, v in self.fields.items()}
        return f"Request({self.kind!r}, {cut!r}, {self.fault!r}, {self.value[:80]!r})"


requests = st.one_of(
    st.builds(
        Request,
        kind=st.just("command"),
        fields=st.dictionaries(st.sampled_from(COMMAND_FIELDS), hostile(), min_size=1, max_size=3),
        fault=st.sampled_from(TEXT_SHAPES),
    ),
    st.builds(
        Request,
        kind=st.just("action"),
        fields=st.dictionaries(st.sampled_from(ACTION_FIELDS), hostile(), min_size=1, max_size=3),
        fault=st.sampled_from(["U0MALLORY", "U0OTHER", "U0ALICE", "U0BOB"]),
    ),
    st.builds(
        Request,
        kind=st.just("signature"),
        fault=st.sampled_from(SIGNATURE_FAULTS),
        value=hostile(),
    ),
    st.builds(Request, kind=st.just("replay"), value=hostile()),
    st.builds(Request, kind=st.just("garbage"), value=hostile()),
)


# ------------------------------------------------------------------------------ sending


async def post(bot: Bot, body: str, headers: dict[str, str]) -> SentResponse:
    async with bot.session.post(bot.events_url, data=body.encode(), headers=headers) as resp:
        return SentResponse(resp.status, await resp.text(), dict(resp.headers))


def command_body(bot: Bot, req: Request) -> str:
    value = req.fields.get("text", MARK)
    fields = {
        "token": "fake-verification-token",
        "team_id": "T0REWIND",
        "team_domain": "rewind-test",
        "channel_id": "C0OPS",
        "channel_name": "ops",
        "user_id": "U0CAROL",
        "user_name": "carol",
        "command": "/rollback",
        "text": req.fault.format(v=value),
        "api_app_id": "A0REWIND",
        "response_url": bot.slack.response_url(f"h{uuid.uuid4().hex[:10]}"),
        "trigger_id": f"{time.time_ns()}.{uuid.uuid4().hex}",
    }
    for key, val in req.fields.items():
        if key != "text":
            fields[key] = val
    return urllib.parse.urlencode(fields)


def action_body(bot: Bot, world: World, req: Request) -> str:
    decision = world.decision
    button = next(b for b in buttons(decision) if "Roll back" in b.text)
    value: dict[str, Any] = json.loads(button.value or "{}")
    for part in ("i", "t", "o"):
        if f"value.{part}" in req.fields:
            value[part] = req.fields[f"value.{part}"]
    payload = block_actions_payload(
        user_id=req.fields.get("user", req.fault),
        action_id=req.fields.get("action_id", button.action_id),
        value=req.fields.get("value", json.dumps(value)),
        channel_id=req.fields.get("channel", INCIDENT_CHANNEL),
        message_ts=req.fields.get("message_ts", str(decision["ts"])),
        block_id=req.fields.get("block_id", button.block_id),
        response_url=bot.slack.response_url(f"h{uuid.uuid4().hex[:10]}"),
        message=decision,
        trigger_id=req.fields.get("trigger_id"),
    )
    if "team" in req.fields:
        payload["team"] = {"id": req.fields["team"]}
    if "type" in req.fields:
        payload["type"] = req.fields["type"]
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


async def send(world: World, req: Request) -> tuple[SentResponse, bool]:
    """Send `req`; returns the answer and whether it was validly signed."""
    bot = world.bot
    if req.kind == "command":
        body = command_body(bot, req)
        return await post(bot, body, sign(body, SECRET)), True
    if req.kind == "action":
        body = action_body(bot, world, req)
        return await post(bot, body, sign(body, SECRET)), True
    if req.kind == "replay":
        body = command_body(bot, Request("command", {"text": req.value}, "status {v}"))
        headers = sign(body, SECRET)
        first = await post(bot, body, headers)
        assert first.status == 200
        return await post(bot, body, headers), True
    if req.kind == "garbage":
        body = urllib.parse.urlencode({"payload": req.value})
        return await post(bot, body, sign(body, SECRET)), True
    body = command_body(bot, Request("command", {"text": req.value}, "myapp v1.4.2 {v}"))
    now = int(time.time())
    headers = sign(body, SECRET)
    match req.fault:
        case "forged":
            headers = sign(body, "not-" + SECRET)
        case "other body":
            headers = sign(body + "&x=1", SECRET)
        case "stale":
            headers = sign(body, SECRET, now - 6 * 60)
        case "future":
            headers = sign(body, SECRET, now + 6 * 60)
        case "no timestamp":
            del headers["X-Slack-Request-Timestamp"]
        case "no signature":
            del headers["X-Slack-Signature"]
        case "no headers":
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        case "bad timestamp":
            # What an HTTP client can put in a header: no control characters, Latin-1 only.
            stamp = "".join(c for c in req.value[:200] if 32 <= ord(c) < 256 and ord(c) != 127)
            headers["X-Slack-Request-Timestamp"] = stamp.strip() or "x"
        case "v1 signature":
            headers["X-Slack-Signature"] = headers["X-Slack-Signature"].replace("v0=", "v1=")
    return await post(bot, body, headers), False


# ------------------------------------------------------------------------------ tests


@settings(
    max_examples=240,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(req=requests)
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # 10 kB values' repr
async def test_hostile_requests_get_a_clear_answer_or_401_and_run_nothing(
    world: World, req: Request
) -> None:
    SENT.append(req.kind)
    resp, signed = await send(world, req)
    if not signed:
        assert resp.status == 401, (req.fault, resp.status, resp.text)
        return
    assert resp.status in (200, 400, 404), (req, resp.status, resp.text[:300])
    assert "Traceback" not in resp.text and "Something went wrong" not in resp.text
    if req.kind == "command" and resp.status == 200 and "text" not in req.fields:
        with_text = req.fault.format(v=MARK)
        if parse(with_text).kind == "help":
            assert "rolls back" in resp.text


async def test_after_the_onslaught_nothing_was_opened_changed_or_run(world: World) -> None:
    bot = world.bot
    assert len(SENT) >= 200 and set(SENT) == {"command", "action", "signature", "replay", "garbage"}
    await quiet(bot.slack)
    incidents = await bot.runtime.store.recent_incidents(50)
    assert [i.id for i in incidents] == [world.incident_id]
    assert incidents[0].status.value == "waiting" and incidents[0].gate is not None
    assert incidents[0].gate.kind.value == "decision"
    assert [h.commands() for h in world.env.hosts] == world.baseline_commands
    for host in world.env.hosts:
        for command in host.commands():
            assert MARK not in command, f"a hostile value reached {host.name}: {command[:200]}"
    answers = [str(c.args.get("text", "")) for c in bot.slack.calls_to("response_url")]
    assert answers, "the bot answered the signed commands"
    assert not [a for a in answers if "Something went wrong" in a]
    assert not [line for line in world.logs if "Traceback" in line and "bot." in line]
    # What the user sees of the hostile reason is escaped, never a live mention or a link.
    thread = json.dumps([c.args for c in bot.slack.calls if c.method.startswith("chat.")])
    assert "<!channel>" not in thread


async def quiet(slack: SlackFake, seconds: float = 1.5, limit: float = 60) -> None:
    """Wait until the bot has made no Slack call for `seconds` (lazy listeners done)."""
    deadline = time.monotonic() + limit
    seen = -1
    while time.monotonic() < deadline and seen != len(slack.calls):
        seen = len(slack.calls)
        await asyncio.sleep(seconds)


async def click_value(
    world: World, user: str, value: dict[str, Any] | str, action_id: str
) -> tuple[SentResponse, str]:
    bot = world.bot
    name = f"r{uuid.uuid4().hex[:10]}"
    payload = block_actions_payload(
        user_id=user,
        action_id=action_id,
        value=value if isinstance(value, str) else json.dumps(value),
        channel_id=INCIDENT_CHANNEL,
        message_ts=str(world.decision["ts"]),
        response_url=bot.slack.response_url(name),
        message=world.decision,
    )
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    return await post(bot, body, sign(body, SECRET)), name


async def test_refused_buttons_are_answered_and_audited(world: World) -> None:
    bot = world.bot
    store = bot.runtime.store
    decision = world.decision
    roll_back = next(b for b in buttons(decision) if "Roll back" in b.text)
    value = json.loads(roll_back.value or "{}")
    before = len(await store.timeline(world.incident_id))
    unknown_before = len(await store.timeline("unknown"))

    async def refused(user: str, val: dict[str, Any], action: str, words: str) -> None:
        resp, name = await click_value(world, user, val, action)
        assert resp.status == 200
        assert words in await bot.reply(name)

    # Someone with rights on another app only; someone with no rights at all.
    await refused("U0OTHER", value, roll_back.action_id, "not an operator or approver")
    await refused("U0MALLORY", value, roll_back.action_id, "not an operator or approver")
    # An incident that does not exist.
    await refused("U0ALICE", {**value, "i": "ffffff"}, roll_back.action_id, "No incident")
    # Production: the requester (an approver) decides, but may not approve her own rollback.
    await bot.click(decision, "Roll back", "U0ALICE")
    approval = await bot.gate("Approve", timeout=30)
    approve = next(b for b in buttons(approval) if "Approve" in b.text)
    approve_value = json.loads(approve.value or "{}")
    await refused("U0ALICE", approve_value, approve.action_id, "four-eyes")
    assert (await store.load(world.incident_id)).gate.kind.value == "approve_start"
    # The incident ends; the approval replayed afterwards by a real approver changes nothing.
    _, name = await bot.command(f"cancel {world.incident_id}", user="U0ALICE")
    assert "cancelled" in await bot.reply(name)
    await refused("U0BOB", approve_value, approve.action_id, "already")

    timeline = (await store.timeline(world.incident_id))[before:]
    refusals = [e for e in timeline if e["what"].startswith("refused")]
    who = [e["who"] for e in refusals]
    assert who == ["U0OTHER", "U0MALLORY", "U0ALICE", "U0BOB"], timeline
    assert "four-eyes" in refusals[2]["result"]
    unknown = (await store.timeline("unknown"))[unknown_before:]
    assert any("ffffff" in e["what"] and e["who"] == "U0ALICE" for e in unknown)
    incident = await store.load(world.incident_id)
    assert incident.status.value == "cancelled" and not incident.approvals
    assert [h.commands() for h in world.env.hosts] == world.baseline_commands


async def test_no_secret_in_logs_slack_reports_or_metrics(world: World) -> None:
    bot = world.bot
    await quiet(bot.slack)
    async with bot.session.get(f"{bot.url}/metrics") as resp:
        metrics = await resp.text()
    places: dict[str, str] = {
        "logs": "\n".join(world.logs),
        "slack calls": json.dumps([[c.method, c.args] for c in bot.slack.calls], default=str),
        "slack files": "\n".join(f.text for f in bot.slack.files),
        "metrics": metrics,
        "reports": "\n".join(
            p.read_text(errors="replace") for p in world.incidents_dir.rglob("*") if p.is_file()
        ),
    }
    assert places["reports"], "the cancelled incident's report was written"
    assert world.logs, "the logs were captured"
    secrets = {
        "bot token": BOT_TOKEN,
        "signing secret": SECRET,
        "app token": APP_TOKEN,
        "Redis password": REDIS_PASSWORD,
        "database password": DB_PASSWORD,
    }
    leaks = [
        f"{what} in {where}: "
        + " | ".join(
            line[:200].replace(secret, "<SECRET>") for line in text.splitlines() if secret in line
        )[:600]
        for what, secret in secrets.items()
        for where, text in places.items()
        if secret in text
    ]
    assert not leaks, "\n".join(leaks)
