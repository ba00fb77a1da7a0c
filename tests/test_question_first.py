"""A question first (issue 21): a gate's buttons are posted ahead of the thread's queued output,
in the channel's next free slot, against a Slack stand-in that rate-limits like Slack (a second
message in a channel within the window gets 429 + Retry-After); the checklist update follows the
question; nothing is lost or posted twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.fronts.slack.notifier import SlackNotifier
from bot.fronts.slack.slack_api import make_client
from bot.workflow.facts import AnswerFact
from bot.workflow.messages import words
from bot.workflow.model import Gate, GateKind, Incident, Status, StepId, StepStatus
from tests.slack_fake import Call, SlackFake, _Fault, all_text, buttons
from tests.test_slack_notifier import CHANNEL, INTERVAL, apps, new_incident

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
    # The checklist update that shows the question follows the question.
    updates = [c for c in calls if c.method == "chat.update"]
    assert updates and all(calls.index(u) > calls.index(asked) for u in updates)
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
