"""A question first (issue 21): a gate's buttons are posted ahead of the thread's queued output,
in the channel's next free slot, against a Slack stand-in that rate-limits like Slack (a second
message in a channel within the window gets 429 + Retry-After); the checklist update follows the
question; nothing is lost or posted twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.fronts.slack.notifier import SlackNotifier
from bot.fronts.slack.slack_api import make_client
from bot.workflow.facts import AnswerFact
from bot.workflow.messages import words
from bot.workflow.model import Gate, GateKind, Incident, Status, StepId, StepStatus
from tests.harness import INCIDENT_CHANNEL, Bot
from tests.slack_fake import Call, SlackFake, _Fault, all_text, buttons
from tests.test_slack_notifier import CHANNEL, INTERVAL, apps, new_incident
from tests.test_workflow_e2e import start

LINES = 600  # queued output: far more than one message, posted over several slots
HOSTS = ("web1", "web2", "web3")


class RateLimitedSlack(SlackFake):
    """The Slack fake, refusing a second message in a channel within `window` seconds with
    429 + Retry-After, as Slack does (chat.postMessage, or a file shared in the channel)."""

    def __init__(self, window: float) -> None:
        super().__init__()
        self.window = window
        self._last: dict[str, float] = {}

    async def _delay_and_fault(self, method: str) -> _Fault | None:
        args = self.calls[-1].args  # the call being answered, recorded just before
        channel = args.get("channel") if method == "chat.postMessage" else None
        if method == "files.completeUploadExternal":
            channel = args.get("channel_id")
        if channel:
            now = time.monotonic()
            last = self._last.get(str(channel))
            if last is not None and now - last < self.window:
                return _Fault(429, "ratelimited", 0, None, 1)
            self._last[str(channel)] = now
        return await super()._delay_and_fault(method)


@pytest.fixture
async def limited() -> AsyncIterator[RateLimitedSlack]:
    async with RateLimitedSlack(INTERVAL) as fake:
        yield fake


def notifier_for(slack: SlackFake, *, questions_first: bool = True) -> SlackNotifier:
    client = make_client("xoxb-test", slack.api_url)
    return SlackNotifier(
        client, apps(), min_interval=INTERVAL, retry_pause=0.05, questions_first=questions_first
    )


def gate_of(inc: Incident) -> Gate:
    return Gate(kind=GateKind.RETRY, step=StepId.VERIFY, token="tokQ", facts={"error": {}})


def is_question(call: Call) -> bool:
    return call.method == "chat.postMessage" and "gate-tokQ" in str(call.args.get("blocks"))


def parent_asks(call: Call) -> bool:
    """A chat.update of the parent that carries the gate's buttons."""
    return call.method == "chat.update" and "ask-tokQ" in str(call.args.get("blocks"))


def shown(call: Call) -> bool:
    """A message that became visible in the channel: a post or a file shared, accepted."""
    kinds = ("chat.postMessage", "files.completeUploadExternal")
    return call.method in kinds and call.ok and call.status == 200


async def step_with_output(n: SlackNotifier, inc: Incident) -> None:
    """A step that printed a lot, said a few things, and is still being posted when it ends."""
    for i in range(LINES):
        await n.output(inc, StepId.VERIFY, HOSTS[i % 3], f"line {i:04d} health check of the app")
        if i % 150 == 149:
            await n.say(inc, words(f"batch {i // 150} checked"))  # output before stays before
    await asyncio.sleep(INTERVAL / 2)  # the background sender is on its way


async def step_ends(n: SlackNotifier, inc: Incident) -> Incident:
    """What the incident service does at a step's end: ask the gate, then update the parent."""
    ended = inc.model_copy(deep=True)
    ended.version += 1
    ended.status = Status.PAUSED
    ended.gate = gate_of(inc)
    ended.step(StepId.VERIFY).status = StepStatus.FAILED
    await n.ask(ended, ended.gate)
    await n.update_parent(ended)
    return ended


def delivered(slack: SlackFake) -> set[int]:
    text = "\n".join(all_text(m) for m in slack.messages(CHANNEL)) + "".join(
        f.text for f in slack.files
    )
    return {i for i in range(LINES) if f"line {i:04d} " in text}


async def test_question_goes_ahead_of_queued_output_then_the_checklist(
    limited: RateLimitedSlack,
) -> None:
    n = notifier_for(limited)
    inc = new_incident()
    inc.thread = await n.open_thread(inc)
    await step_with_output(n, inc)
    mark = limited.mark()
    await step_ends(n, inc)
    await n.flush(inc)
    await n.aclose()

    calls = limited.calls[mark:]
    questions = [c for c in calls if is_question(c)]
    assert [c.status for c in questions][-1] == 200
    (asked,) = [c for c in questions if c.ok]  # posted once, never twice
    before = calls[: calls.index(asked)]
    # At most the one message that already had its slot when the step ended goes before.
    assert sum(shown(c) for c in before) <= 1, [c.method for c in before]
    assert sum(c.method == "chat.postMessage" for c in before) <= 4
    # The queued output and messages come after it, all of them.
    after = calls[calls.index(asked) + 1 :]
    assert sum(shown(c) for c in after) >= 3
    assert delivered(limited) == set(range(LINES))
    # The parent showed the question's buttons first: one chat.update, ahead of the thread's
    # question and of everything queued (it waits for no message slot).
    updates = [c for c in calls if c.method == "chat.update"]
    (on_parent,) = [c for c in updates if parent_asks(c)]
    assert on_parent.ok and calls.index(on_parent) < calls.index(asked)
    assert sum(shown(c) for c in calls[: calls.index(on_parent)]) <= 1
    # Its buttons are in the thread once, and Slack's limit held: every 429 was retried.
    thread = limited.thread(CHANNEL, inc.thread.ts)
    with_buttons = [m for m in thread if buttons(m)]
    assert len(with_buttons) == 1 and "Retry" in [b.text for b in buttons(with_buttons[0])]
    assert n.failures == 0
    # The pacing kept within the limit: the interval counts from Slack's answer, so no message
    # reached Slack too soon after the one before (test_question_rate_limited… covers a 429).
    assert [c.method for c in limited.calls if c.status == 429] == []


async def test_without_question_first_the_question_waits_behind_the_output(
    limited: RateLimitedSlack,
) -> None:
    """The same step end, the question queued as before: it waits behind every queued message
    (the baseline `bench/question_first.py` measures; shows the test above can fail)."""
    n = notifier_for(limited, questions_first=False)
    inc = new_incident()
    inc.thread = await n.open_thread(inc)
    await step_with_output(n, inc)
    mark = limited.mark()
    await step_ends(n, inc)
    await n.flush(inc)
    await n.aclose()
    calls = limited.calls[mark:]
    (asked,) = [c for c in calls if is_question(c) and c.ok]
    assert sum(shown(c) for c in calls[: calls.index(asked)]) >= 3


async def test_question_rate_limited_is_retried_and_posted_once(slack: SlackFake) -> None:
    n = notifier_for(slack)
    inc = new_incident()
    inc.thread = await n.open_thread(inc)
    await n.say(inc, words("the step said something"))
    slack.fail_next("chat.postMessage", status=429, retry_after=0, times=2)
    ended = await step_ends(n, inc)
    await n.flush(inc)
    statuses = [c.status for c in slack.calls if is_question(c)]
    assert statuses.count(200) == 1 and 429 in statuses
    texts = [all_text(m) for m in slack.thread(CHANNEL, inc.thread.ts)]
    assert sum("Retry" in t for t in texts) == 1
    assert "the step said something" in "\n".join(texts)
    # Answered at once: the answer waits for the question's message, then takes its buttons.
    await n.resolve_gate(ended, "tokQ", AnswerFact(choice="retry", by="U0CAROL"))
    await n.aclose()
    (gate_message,) = [m for m in slack.thread(CHANNEL, inc.thread.ts) if "Retry" in all_text(m)]
    assert buttons(gate_message) == []
    assert "Retry chosen by <@U0CAROL>" in all_text(gate_message)
    assert n.failures == 0


# ---- the parent asks too: a click on its buttons, through the running bot -----------------


async def parent_with_buttons(bot: Bot) -> dict[str, Any]:
    await bot.slack.wait_until(
        lambda: bool(buttons(bot.parent())), timeout=30, what="parent buttons"
    )
    return bot.parent()


async def test_a_click_on_the_parents_buttons_answers_the_gate(bot: Bot) -> None:
    await start(bot)
    decision = await bot.gate("Roll back")
    parent = await parent_with_buttons(bot)
    text = all_text(parent)
    # The question's line and the gate's own buttons, the checklist kept beneath.
    assert "Roll back or fix forward?" in text and "Details in the thread" in text
    assert "Runbook checklist" in text
    same = [(b.action_id, b.value, b.text) for b in buttons(parent)]
    assert same == [(b.action_id, b.value, b.text) for b in buttons(decision)]
    # The rights are checked as on the thread's message.
    _, name = await bot.click(parent, "Roll back", "U0MALLORY")
    assert "not an operator or approver" in await bot.reply(name)
    assert (await bot.incident()).gate is not None
    # A click on the parent answers the gate; the thread's message takes the answer.
    _, name = await bot.click(parent, "Roll back", "U0CAROL")
    await bot.slack.wait_until(
        lambda: buttons(bot.slack.message(INCIDENT_CHANNEL, decision["ts"])) == [],
        timeout=30,
        what="the gate message answered",
    )
    answered = bot.slack.message(INCIDENT_CHANNEL, decision["ts"])
    assert "Roll back chosen by <@U0CAROL>" in all_text(answered)
    # The same gate from the thread's button afterwards: already answered, nothing changed.
    _, again = await bot.click(decision, "Roll back", "U0CAROL")
    assert "Already answered" in await bot.reply(again)
    # The parent loses the buttons with its next update, and still holds the checklist: it was
    # never rewritten with the answer.
    await bot.slack.wait_until(lambda: not buttons(bot.parent()), timeout=30, what="no buttons")
    assert "Runbook checklist" in all_text(bot.parent())
    parent_ts = bot.parent()["ts"]
    edits = [c for c in bot.slack.calls_to("chat.update") if c.args.get("ts") == parent_ts]
    assert edits and all("Runbook checklist" in str(c.args.get("blocks")) for c in edits)
    incident = await bot.incident()
    assert [a for a in incident.facts.answered.values()] == [
        AnswerFact(choice="Roll back", by="U0CAROL")
    ]


async def test_an_answer_clicked_on_the_parent_edits_the_gate_message_never_the_parent(
    slack: SlackFake,
) -> None:
    n = notifier_for(slack)
    inc = new_incident()
    inc.thread = await n.open_thread(inc)
    ended = await step_ends(n, inc)
    await n.flush(inc)
    await n.aclose()
    (question,) = [m for m in slack.thread(CHANNEL, inc.thread.ts) if buttons(m)]
    parent = slack.message(CHANNEL, inc.thread.ts)
    assert [b.value for b in buttons(parent)] == [b.value for b in buttons(question)]
    # The web process answers (it never saw the gate); the clicked message was the parent.
    fact = AnswerFact(choice="retry", by="U0CAROL")
    after = ended.model_copy(deep=True)
    after.version += 1
    after.status, after.gate = Status.RUNNING, None
    after.facts.answered["tokQ"] = fact
    other = notifier_for(slack)
    await other.resolve_gate(after, "tokQ", fact, ts=inc.thread.ts)
    await other.update_parent(after)
    await other.aclose()
    answered = slack.message(CHANNEL, question["ts"])
    assert buttons(answered) == [] and "Retry chosen by <@U0CAROL>" in all_text(answered)
    parent = slack.message(CHANNEL, inc.thread.ts)
    assert buttons(parent) == [] and "Runbook checklist" in all_text(parent)
    assert "Retry chosen by" not in all_text(parent)
    # An older state asked again (a late process) never brings the buttons back.
    late = notifier_for(slack)
    await late.update_parent(after)
    await late.ask(ended, gate_of(ended))
    await late.aclose()
    assert buttons(slack.message(CHANNEL, inc.thread.ts)) == []
