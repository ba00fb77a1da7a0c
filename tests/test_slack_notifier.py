"""SlackNotifier against the Slack fake (real HTTP): pacing, coalescing, retries, fallbacks."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.config.apps_file import AppsFile, parse_apps
from bot.fronts.slack.ids import Action, ButtonValue
from bot.fronts.slack.notifier import SlackNotifier
from bot.fronts.slack.slack_api import make_client
from bot.workflow.facts import AnswerFact
from bot.workflow.machine import new_steps
from bot.workflow.messages import words
from bot.workflow.model import Gate, GateKind, Incident, Status, StepId, StepStatus, utcnow
from tests.slack_fake import SlackFake, all_text, buttons

CHANNEL = "C0INCIDENT"
NOTIFY = ["C0STAKE1", "C0STAKE2"]
INTERVAL = 0.2  # the production default is 1 s; the tests keep the same logic, faster


def apps() -> AppsFile:
    return parse_apps(
        {
            "apps": {
                "myapp": {
                    "environment": "production",
                    "repo": "/tmp/myapp.git",
                    "incident_channel": CHANNEL,
                    "notify": NOTIFY,
                    "mention": ["<!subteam^S0ONCALL>"],
                    "operators": ["U0CAROL"],
                    "approvers": ["U0ALICE", "U0BOB", "U0CAROL"],
                    "ssh": {"transport": "local"},
                    "hosts": [
                        {"name": "web1", "address": "127.0.0.1"},
                        {"name": "web2", "address": "127.0.0.1"},
                    ],
                    "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
                }
            }
        },
        "test.yaml",
    )


def new_incident() -> Incident:
    return Incident(
        id="abc123",
        app="myapp",
        environment="production",
        requested_version="v1.3.2",
        reason="checkout returns 500",
        requested_by="U0CAROL",
        steps=new_steps(),
        facts={"assess": {"deployed": "v1.4.0"}},
    )


@pytest.fixture
async def notifier(slack: SlackFake) -> AsyncIterator[SlackNotifier]:
    client = make_client("xoxb-test", slack.api_url)
    n = SlackNotifier(client, apps(), min_interval=INTERVAL, retry_pause=0.05)
    yield n
    await n.aclose()


async def opened(notifier: SlackNotifier) -> Incident:
    inc = new_incident()
    inc.thread = await notifier.open_thread(inc)
    return inc


def thread_text(slack: SlackFake, inc: Incident) -> str:
    assert inc.thread is not None
    return "\n".join(all_text(m) for m in slack.thread(CHANNEL, inc.thread.ts))


def posts_in_thread(slack: SlackFake, inc: Incident, since: int = 0) -> list[Any]:
    assert inc.thread is not None
    return [
        c
        for c in slack.calls[since:]
        if c.method == "chat.postMessage" and c.args.get("thread_ts") == inc.thread.ts and c.ok
    ]


async def test_open_thread_posts_parent_with_permalink(
    slack: SlackFake, notifier: SlackNotifier
) -> None:
    inc = await opened(notifier)
    assert inc.thread is not None and inc.thread.channel == CHANNEL
    assert inc.thread.permalink.startswith("https://fake.slack.com/archives/C0INCIDENT/p")
    parent = slack.message(CHANNEL, inc.thread.ts)
    assert "Rollback myapp → v1.3.2" in all_text(parent)
    assert "Runbook checklist" in all_text(parent)
    slack.assert_no_errors()


async def test_burst_of_output_becomes_few_paced_messages(
    slack: SlackFake, notifier: SlackNotifier
) -> None:
    inc = await opened(notifier)
    mark = slack.mark()
    for i in range(200):
        await notifier.output(inc, StepId.REDEPLOY, f"web{i % 2 + 1}", f"line {i:03d} of output")
        if i % 20 == 0:
            await asyncio.sleep(0.01)  # the bursts interleave with the background task
    await notifier.flush(inc)
    posts = posts_in_thread(slack, inc, mark)
    assert 1 <= len(posts) <= 6, len(posts)
    gaps = [b.at - a.at for a, b in itertools.pairwise(posts)]
    assert all(gap >= INTERVAL * 0.8 for gap in gaps), gaps
    seen = thread_text(slack, inc) + "".join(f.text for f in slack.files)
    missing = [i for i in range(200) if f"line {i:03d} of output" not in seen]
    assert missing == []
    assert "`web1` · Redeploy previous version" in thread_text(slack, inc)
    slack.assert_no_errors()


async def test_huge_output_goes_up_as_a_file(slack: SlackFake, notifier: SlackNotifier) -> None:
    inc = await opened(notifier)
    for i in range(10_000):
        await notifier.output(inc, StepId.VERIFY, "web1", f"log line {i}")
    await notifier.flush(inc)
    (f,) = slack.files
    assert f.thread_ts == inc.thread.ts if inc.thread else False
    assert all(f"log line {i}\n" in f.text for i in (0, 5000, 9999))
    assert f.text.count("\n") >= 10_000
    assert "10000 lines" in thread_text(slack, inc)
    slack.assert_no_errors()


async def test_429_with_retry_after_is_retried(slack: SlackFake, notifier: SlackNotifier) -> None:
    inc = await opened(notifier)
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    await notifier.say(inc, words("Health checks are green"))
    await notifier.flush(inc)
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses[-2:] == [429, 200]
    assert "Health checks are green" in thread_text(slack, inc)
    assert notifier.failures == 0


async def test_ok_false_ratelimited_is_retried(slack: SlackFake, notifier: SlackNotifier) -> None:
    inc = await opened(notifier)
    slack.fail_next("chat.postMessage", ok_false="ratelimited", times=2)
    await notifier.say(inc, words("still here"))
    await notifier.flush(inc)
    errors = [c.error for c in slack.calls_to("chat.postMessage")][-3:]
    assert errors == ["ratelimited", "ratelimited", None]
    assert "still here" in thread_text(slack, inc)
    assert notifier.failures == 0


async def test_refused_messages_fall_back(slack: SlackFake, notifier: SlackNotifier) -> None:
    inc = await opened(notifier)
    # A plain reply refused as too long: it lands in a simpler form.
    slack.fail_next("chat.postMessage", ok_false="msg_too_long")
    await notifier.say(inc, words("first try refused"))
    await notifier.flush(inc)
    assert "first try refused" in thread_text(slack, inc)
    # A gate refused as invalid blocks: the minimal form still has every button.
    gate = Gate(kind=GateKind.RETRY, step=StepId.REDEPLOY, token="tok1", facts={"error": {}})
    slack.fail_next("chat.postMessage", ok_false="invalid_blocks")
    await notifier.ask(inc, gate)
    await notifier.flush(inc)
    last = slack.thread(CHANNEL, inc.thread.ts if inc.thread else "")[-1]
    labels = [b.text for b in buttons(last)]
    assert "Retry" in labels and "Abort" in labels
    assert notifier.gate_message("tok1") == (CHANNEL, last["ts"])
    # Output refused: it goes up as a file, never lost.
    slack.fail_next("chat.postMessage", ok_false="msg_too_long")
    await notifier.output(inc, StepId.REDEPLOY, "web1", "precious line")
    await notifier.flush(inc)
    assert any("precious line" in f.text for f in slack.files)
    # A parent update refused: the plain-text version lands.
    slack.fail_next("chat.update", ok_false="invalid_blocks")
    inc.reason = "changed reason"
    inc.version += 1
    await notifier.update_parent(inc)
    await notifier.flush(inc)
    parent = slack.message(CHANNEL, inc.thread.ts if inc.thread else "")
    assert "changed reason" in all_text(parent)
    assert notifier.fallbacks == 4 and notifier.failures == 0


async def test_other_errors_are_counted_not_raised(
    slack: SlackFake, notifier: SlackNotifier
) -> None:
    inc = await opened(notifier)
    slack.fail_next("chat.postMessage", ok_false="channel_not_found")
    await notifier.say(inc, words("lost"))
    await notifier.flush(inc)
    slack.fail_next("chat.postMessage", status=500, times=5)
    await notifier.say(inc, words("server down"))  # Slack down a while: said late, not lost
    await notifier.flush(inc)
    assert notifier.failures == 1
    assert notifier.failures_by_method["chat.postMessage"] == 1
    assert "server down" in [m["text"] for m in slack.messages("C0INCIDENT")]


async def test_parent_updates_coalesce_latest_wins(
    slack: SlackFake, notifier: SlackNotifier
) -> None:
    inc = await opened(notifier)
    mark = slack.mark()
    for i in range(20):
        inc = inc.model_copy(deep=True)
        inc.version += 1
        inc.step(StepId.PREREQUISITES).status = StepStatus.RUNNING
        inc.step(StepId.PREREQUISITES).summary = f"change {i}"
        await notifier.update_parent(inc)
        await asyncio.sleep(0.02)
    await notifier.flush(inc)
    updates = [c for c in slack.calls[mark:] if c.method == "chat.update"]
    assert 1 <= len(updates) <= 5, len(updates)
    gaps = [b.at - a.at for a, b in itertools.pairwise(updates)]
    assert all(gap >= INTERVAL * 0.8 for gap in gaps), gaps
    parent = slack.message(CHANNEL, inc.thread.ts if inc.thread else "")
    assert "change 19" in all_text(parent)
    assert "change 18" not in all_text(parent)
    slack.assert_no_errors()


async def test_stakeholders_get_notice_with_permalink(
    slack: SlackFake, notifier: SlackNotifier
) -> None:
    inc = await opened(notifier)
    told = await notifier.stakeholders(inc, "start")
    assert told == NOTIFY
    assert inc.thread is not None
    for channel in NOTIFY:
        (msg,) = slack.messages(channel)
        text = all_text(msg)
        assert inc.thread.permalink in text and "<!subteam^S0ONCALL>" in text
        assert "started by <@U0CAROL>" in text
    slack.fail_next("chat.postMessage", ok_false="channel_not_found")
    assert await notifier.stakeholders(inc, "end") == ["C0STAKE2"]


async def test_gate_resolved_in_another_process(slack: SlackFake, notifier: SlackNotifier) -> None:
    inc = await opened(notifier)
    gate = Gate(kind=GateKind.APPROVE_START, step=StepId.CODE, token="tok9")
    await notifier.ask(inc, gate)
    await notifier.flush(inc)
    (msg,) = slack.thread(CHANNEL, inc.thread.ts if inc.thread else "")
    assert "<@U0ALICE>" in all_text(msg) and "<@U0CAROL> must approve" in all_text(msg)
    approve = next(b for b in buttons(msg) if b.action_id == Action.APPROVE)
    assert ButtonValue.parse(approve.value or "") == ButtonValue(i="abc123", t="tok9")
    # The web process answers: its notifier never saw the gate.
    other = SlackNotifier(make_client("xoxb-test", slack.api_url), apps(), min_interval=INTERVAL)
    await other.resolve_gate(inc, "tok9", AnswerFact(choice="approve", by="U0ALICE"))
    await other.aclose()
    after = slack.message(CHANNEL, msg["ts"])
    assert buttons(after) == []
    assert "Approved by <@U0ALICE>" in all_text(after)


async def test_gate_found_on_a_later_page_of_the_thread(
    slack: SlackFake, notifier: SlackNotifier
) -> None:
    inc = await opened(notifier)
    for i in range(5):
        await notifier.say(inc, words(f"line {i}"))
    await notifier.flush(inc)  # a question goes ahead of what is queued: these are posted first
    gate = Gate(kind=GateKind.APPROVE_START, step=StepId.CODE, token="tok7")
    await notifier.ask(inc, gate)
    await notifier.flush(inc)
    slack.replies_page = 2  # the gate is on the fourth page of the thread
    other = SlackNotifier(make_client("xoxb-test", slack.api_url), apps(), min_interval=INTERVAL)
    await other.resolve_gate(inc, "tok7", AnswerFact(choice="approve", by="U0ALICE"))
    await other.aclose()
    thread = slack.thread(CHANNEL, inc.thread.ts if inc.thread else "")
    (msg,) = [m for m in thread if "Approved by" in all_text(m)]
    assert buttons(msg) == []
    assert "Approved by <@U0ALICE>" in all_text(msg)
    pages = slack.calls_to("conversations.replies")
    assert len(pages) >= 3 and pages[1].args.get("cursor")


async def test_upload_alert_ephemeral_home(slack: SlackFake, notifier: SlackNotifier) -> None:
    inc = await opened(notifier)
    await notifier.upload(inc, "report.md", "# Report\n", "Incident report", "Here it is")
    await notifier.flush(inc)
    (f,) = slack.files
    assert f.filename == "report.md" and f.thread_ts == (inc.thread.ts if inc.thread else "")
    await notifier.alert(inc, words("Error rate is climbing again"))
    await notifier.flush(inc)
    assert "Error rate is climbing again" in thread_text(slack, inc)
    for channel in NOTIFY:
        assert "Error rate is climbing again" in all_text(slack.messages(channel)[-1])
    assert await notifier.ephemeral(CHANNEL, "U0CAROL", "only you")
    assert slack.ephemerals[-1]["text"] == "only you"
    assert await notifier.publish_home("U0CAROL", [inc])
    assert slack.views["U0CAROL"]["type"] == "home"
    slack.assert_no_errors()


async def test_aclose_flushes_the_final_update(slack: SlackFake) -> None:
    n = SlackNotifier(make_client("xoxb-test", slack.api_url), apps(), min_interval=1.0)
    inc = new_incident()
    inc.thread = await n.open_thread(inc)
    inc.status, inc.outcome, inc.finished_at = Status.COMPLETED, "Recovered for good", utcnow()
    inc.version += 1
    await n.update_parent(inc)  # inside the interval: pending, not sent yet
    await asyncio.sleep(0.05)
    assert not slack.calls_to("chat.update")
    await n.aclose()
    assert len(slack.calls_to("chat.update")) == 1
    assert "Recovered for good" in all_text(slack.message(CHANNEL, inc.thread.ts))


async def test_messages_are_queued_in_order_and_never_wait_for_slack(
    slack: SlackFake, notifier: SlackNotifier
) -> None:
    """The work never waits for Slack: a slow Slack and the pacing sit in the background, and
    the thread still shows everything in the order it was said — but the question, which goes
    ahead of what is still waiting for its turn (test_question_first.py)."""
    inc = await opened(notifier)
    mark = slack.mark()
    slack.slow("chat.postMessage", 2.0, times=1)
    gate = Gate(kind=GateKind.RETRY, step=StepId.REDEPLOY, token="tok5", facts={"error": {}})
    await notifier.say(inc, words("first"))
    await notifier.output(inc, StepId.REDEPLOY, "web1", "an output line")
    await notifier.say(inc, words("second"))
    await notifier.ask(inc, gate)
    await notifier.alert(inc, words("third, an alert"))
    await notifier.resolve_gate(inc, "tok5", AnswerFact(choice="retry", by="U0CAROL"))
    # Everything above returned at once: nothing has reached Slack yet.
    assert posts_in_thread(slack, inc, mark) == []
    await notifier.flush(inc)
    texts = [all_text(m) for m in slack.thread(CHANNEL, inc.thread.ts if inc.thread else "")]
    order = ["Retry", "first", "an output line", "second", "third, an alert"]
    found = [next(i for i, text in enumerate(texts) if word in text) for word in order]
    assert found == sorted(found), texts
    # The answer waited for the gate's own message, then took its buttons away.
    (gate_message,) = [m for m in slack.thread(CHANNEL, inc.thread.ts if inc.thread else "")
                       if "Retry chosen by <@U0CAROL>" in all_text(m)]  # fmt: skip
    assert buttons(gate_message) == []
    slack.assert_no_errors()
