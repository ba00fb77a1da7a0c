"""Gates in the thread: the question with its buttons, and, once answered, the same message
with who answered what instead of the buttons.

The parent shows an open gate's buttons too (`blocks.parent_question`); it is never rewritten
here: a click on it answers the thread's gate message (block id `gate-<token>`), and the
parent's next update has no buttons any more."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.config.apps_file import AppsFile
from bot.fronts.slack import blocks as render
from bot.fronts.slack import mrkdwn
from bot.fronts.slack import text as t
from bot.fronts.slack.pacing import ChannelPacer
from bot.fronts.slack.slack_api import error as _error
from bot.fronts.slack.slack_calls import SlackCalls
from bot.fronts.slack.thread_state import IncidentState, Threads
from bot.workflow import said
from bot.workflow.facts import AnswerFact
from bot.workflow.model import Gate, GateKind, Incident


@dataclass
class _GateMessage:
    channel: str
    ts: str
    gate: Gate


class GateMessages:
    """Posts gates and resolves them, in this process or in another (found in the thread)."""

    def __init__(
        self, calls: SlackCalls, threads: Threads, pacer: ChannelPacer, apps: AppsFile
    ) -> None:
        self.calls = calls
        self.threads = threads
        self.pacer = pacer
        self.apps = apps
        self._gates: dict[str, _GateMessage] = {}

    def message_of(self, token: str) -> tuple[str, str] | None:
        """(channel, ts) of the gate message this process posted, if any."""
        known = self._gates.get(token)
        return (known.channel, known.ts) if known else None

    async def ask_now(
        self, state: IncidentState, incident: Incident, gate: Gate, *, urgent: bool = False
    ) -> None:
        """Post the gate's question and buttons; `urgent`: in the channel's next free slot,
        ahead of whatever else waits for one."""
        where = self.threads.where(state)
        if where is None:
            return
        channel, thread_ts = where
        ping = self.ping(incident, gate)
        text, blocks = render.gate(incident, gate, ping)
        _, minimal = render.gate_minimal(incident, gate, ping)
        await self.pacer.slot(channel, urgent=urgent)
        ts = await self.calls.post(channel, text, blocks, thread_ts, fallback_blocks=minimal)
        if ts:
            self._gates[gate.token] = _GateMessage(channel, ts, gate)

    async def resolve_now(
        self, state: IncidentState, incident: Incident, token: str, fact: AnswerFact, ts: str | None
    ) -> None:
        answer = mrkdwn.render(said.answered(fact, incident.updated_at))
        known = self._gates.pop(token, None)
        if known is not None:
            new_blocks = render.answered(incident, known.gate, answer)
            await self.calls.update(known.channel, known.ts, answer, new_blocks)
            return
        where = self.threads.where(state)
        if where is None:
            return
        channel, thread_ts = where
        if ts == thread_ts:  # a click on the parent's buttons: the answer goes on the gate message
            ts = None
        message = await self._find(channel, thread_ts, token, ts)
        if message is not None:
            new_blocks = render.answered_from_message(message.get("blocks") or [], answer)
            await self.calls.update(channel, str(message["ts"]), answer, new_blocks)
        else:
            await self.pacer.slot(channel)
            await self.calls.post_text(channel, answer, thread_ts)

    def ping(self, incident: Incident, gate: Gate) -> str:
        app = self.apps.app(incident.app)
        if gate.kind in (GateKind.APPROVE_START, GateKind.APPROVE_DB) and app is not None:
            approvers = [
                a for a in app.approvers if not (incident.production and a == incident.requested_by)
            ]
            if approvers:
                return "Approvers: " + " ".join(t.mention(a) for a in approvers)
        return t.mention(incident.requested_by)

    async def _find(
        self, channel: str, thread_ts: str | None, token: str, ts: str | None
    ) -> Mapping[str, Any] | None:
        if not thread_ts:
            return None
        block_id = render.gate_block_id(token)
        first = await self.calls.safe(
            "conversations.replies",
            functools.partial(
                self.calls.client.conversations_replies, channel=channel, ts=thread_ts, limit=200
            ),
        )
        if first is None:
            return None
        pages = 0
        try:
            async for page in first:  # the SDK follows `response_metadata.next_cursor`
                for msg in page.get("messages") or []:
                    if not isinstance(msg, Mapping) or msg.get("ts") == thread_ts:
                        continue  # the parent: its own updates show the gate closed
                    if ts and msg.get("ts") == ts:
                        return msg
                    ids = [str(b.get("block_id", "")) for b in msg.get("blocks") or []]
                    if any(i == block_id or i.startswith(block_id + "-") for i in ids):
                        return msg
                pages += 1
                if pages >= 10:  # a 2,000-reply thread: the gate is not worth more calls
                    break
        except (SlackApiError, SlackClientError, aiohttp.ClientError) as exc:
            self.calls.failed(
                "conversations.replies", _error(exc) if isinstance(exc, SlackApiError) else str(exc)
            )
        return None
