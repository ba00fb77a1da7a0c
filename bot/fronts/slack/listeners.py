"""Bolt listeners: `/rollback`, the buttons, and the App Home tab.

Ack first (well inside Slack's 3 seconds); anything that needs the repo, Redis or other Slack
calls runs after the ack (`AfterAck`: a task the ack starts, no copy of Bolt's request, its turn
once the acks under way are out) and answers through the `response_url`, all answers through one
HTTP session (`Responses`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.fronts.command import HELP, Command, parse
from bot.fronts.dispatch import (
    Dispatcher,
    GroupPlanMade,
    PlanMade,
    check_plan,
    check_start,
)
from bot.fronts.slack import blocks, mrkdwn
from bot.fronts.slack.after_ack import AfterAck
from bot.fronts.slack.groups import GroupResolver
from bot.fronts.slack.ids import CHOICE, GROUP_PLAN, Action, ButtonValue
from bot.fronts.slack.replies import reply_text
from bot.fronts.slack.respond import Respond, Responses
from bot.incidents.service import IncidentService
from bot.plan import group as group_plan
from bot.plan import render
from bot.plan.build import Planner
from bot.ports import PendingCommands, Store
from bot.workflow.errors import StoreUnavailable, UserFacingError
from bot.workflow.machine import Answer
from bot.workflow.messages import ChannelRef, message
from bot.workflow.plan import GroupPlan, Plan

log = logging.getLogger(__name__)
STORE_AWAY = "Rewind cannot reach its store (Redis); nothing was changed. Try again in a minute."
STORE_LOST = (
    "Rewind lost its store (Redis) while doing this, so it may be half done: "
    "`/rollback status` in a minute shows where things stand."
)
STORE_CHECK = 1.0  # seconds: a Redis that is away is said well within Slack's 3 s


class PlanPoster(Protocol):
    async def post_plan(
        self, channel: str, text: str, blocks: list[dict[str, Any]], filename: str, content: str
    ) -> str | None: ...


class SlackFront:
    """What the Slack listeners need: the incident service, the planner, the store, and group
    membership."""

    def __init__(
        self,
        incidents: IncidentService,
        planner: Planner,
        store: Store,
        groups: GroupResolver,
        poster: PlanPoster | None = None,
        pending: PendingCommands | None = None,
        *,
        at_once: int = 8,
    ) -> None:
        self.incidents = incidents
        self.store = store
        self.groups = groups
        self.dispatcher = Dispatcher(incidents, store, planner)
        self.poster = poster
        self.pending = pending
        # Under a burst, the work after the ack waits its turn so that acks keep coming back
        # within Slack's 3 s: every request is acked first, then answered in order.
        self.after = AfterAck(at_once)
        self.responses = Responses()

    async def store_up(self) -> bool:
        try:
            return await asyncio.wait_for(self.store.ping(), STORE_CHECK)
        except TimeoutError:
            return False

    # ---- /rollback ----------------------------------------------------------------------

    async def ack_command(self, body: dict[str, Any], ack: AsyncAck) -> None:
        """Fast checks only: parse, known app, version shape, user listed directly; then the
        command is recorded, acked, and its work started after the ack."""
        cmd: Command | None = None
        try:
            cmd = parse(body.get("text", ""))
            if cmd.kind == "help":
                await ack(text=_help())
                return
            if cmd.kind == "start":
                check_start(self.incidents, cmd)
            if cmd.kind == "plan":
                check_plan(self.incidents, cmd)
            key = _command_key(body)
            kept = await self._keep(key, body)
            if kept is None:
                await ack(text=f":warning: {STORE_AWAY}")
                return  # nothing is done
            if cmd.kind == "start":
                await ack(text=f"Checking `{cmd.app}` {cmd.version or '(previous version)'}…")
            elif cmd.kind == "plan":
                await ack(
                    text=f"Planning the rollback of `{cmd.app}` (read-only: nothing changes)…"
                )
            else:
                await ack()
        except UserFacingError as exc:
            await ack(text=f":warning: {mrkdwn.render(exc.message)}")
            return  # refused at once: nothing more is said or done
        if kept:
            self.after.later(functools.partial(self._follow, key, body))

    async def _keep(self, key: str, body: dict[str, Any]) -> bool | None:
        """Before the ack: the command is kept in Redis, so that a process dying right after
        the ack loses nothing (another web process carries it out, see `recover`). True: kept
        now, to be carried out; False: seen before (a Slack retry), nothing to do; None: the
        store is away (that round trip is the store check)."""
        try:
            # Not wait_for: its task of its own would cost the ack two more turns of the loop.
            async with asyncio.timeout(STORE_CHECK):
                if self.pending is None:  # at most once, as a Slack retry is
                    return await self._first_time("cmd", key)
                return await self.pending.record(key, body)
        except (TimeoutError, StoreUnavailable):
            return None

    async def _follow(self, key: str, body: dict[str, Any], *, resumed: bool = False) -> None:
        """After the ack: the command, carried out in its turn. A recorded command is this
        process's from its record on (its lease kept alive meanwhile), so that another web
        process never takes it for a dead one's; forgotten once carried out."""
        respond = self.responses.to(body.get("response_url"))
        if self.pending is None:
            await self._carry_out(body, respond, resumed=resumed)
            return
        async with self.pending.working(key):
            await self._carry_out(body, respond, resumed=resumed)

    async def recover(self) -> int:
        """Carry out the commands acked by a process that died before it could; how many."""
        if self.pending is None:
            return 0
        count = 0
        for key, body in await self.pending.orphans():
            log.warning("carrying out a command acked by a process that stopped (%s)", key)
            self.after.later(functools.partial(self._follow, key, body, resumed=True))
            count += 1
        return count

    async def _carry_out(
        self, body: dict[str, Any], respond: Respond, *, resumed: bool = False
    ) -> None:
        cmd: Command | None = None
        try:
            cmd = parse(body.get("text", ""))
            if cmd.kind == "help":
                return  # help was the ack
            text = await self._dispatch(cmd, body["user_id"])
        except UserFacingError as exc:
            text = f":warning: {mrkdwn.render(exc.message)}"
        except StoreUnavailable:
            log.warning("command %r: Redis unreachable", body.get("text", "")[:100])
            text = f":warning: {STORE_LOST}"
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("command failed [error id %s]", error_id)
            text = f":x: Something went wrong (error id `{error_id}`); nothing was started."
        if text and resumed:
            text += "\n_Rewind restarted while it handled this command; it is carried out now._"
        if text:
            await respond(
                text=text,
                blocks=await self._open_gate_blocks(cmd, text),
                response_type="ephemeral",
                replace_original=False,
            )

    async def _open_gate_blocks(self, cmd: Command | None, text: str) -> list[dict[str, Any]]:
        """`status` of one incident that waits for a click: its buttons, right there.

        If the gate's own message never made it to Slack, this is how the incident goes on.
        """
        if cmd is None or cmd.kind != "status" or not cmd.target:
            return []
        incident = await self.dispatcher.gate_of(cmd.target)
        if incident is None or incident.gate is None:
            return []
        _, gate_blocks = blocks.gate(incident, incident.gate)
        return [*blocks.text_blocks(text), *gate_blocks][:50]

    async def _dispatch(self, cmd: Command, user: str) -> str:
        actor = await self.groups.actor(user)
        reply = await self.dispatcher.run(cmd, actor)
        if isinstance(reply, PlanMade):
            return await self._post_plan(reply.plan)
        if isinstance(reply, GroupPlanMade):
            return await self._post_group_plan(reply.group)
        return reply_text(reply)

    async def _post_plan(self, plan: Plan) -> str:
        text, plan_blocks = blocks.plan(plan.id, plan.app, render.summary(plan))
        where = await self._post(
            plan.app, text, plan_blocks, render.filename(plan), render.markdown(plan)
        )
        return (
            f":clipboard: Plan `{plan.id}` for `{plan.app}` → `{plan.target}` is posted {where}, "
            "with a *Run this plan* button. Nothing was changed to make it."
        )

    async def _post_group_plan(self, group: GroupPlan) -> str:
        """A group's plan, posted as one app's is: one message in the incident channel of its
        first app (where the group's thread will be), the whole plan as its file."""
        lead = group.plans[0].app
        text, plan_blocks = blocks.group_plan(group.group, group.id, group_plan.summary(group))
        where = await self._post(
            lead, text, plan_blocks, group_plan.filename(group), group_plan.markdown(group)
        )
        apps = ", ".join(f"`{p.app}` → `{p.target}`" for p in group.plans)
        return (
            f":clipboard: Plan `{group.id}` of the group `{group.group}` ({apps}) is posted "
            f"{where}, with a *Run this plan* button. Nothing was changed to make it."
        )

    async def _post(
        self, app_name: str, text: str, plan_blocks: list[dict[str, Any]], name: str, content: str
    ) -> str:
        """A plan's message in the app's incident channel, the file in its thread: where."""
        app = self.incidents.app(app_name)
        channel = app.incident_channel
        if self.poster is None:
            raise UserFacingError("Plans cannot be posted from this process.")
        link = await self.poster.post_plan(channel, text, plan_blocks, name, content)
        if link is None:
            raise UserFacingError(
                message(
                    "I could not post in ",
                    ChannelRef(channel),
                    f", the incident channel of `{app.name}`: invite me there (`/invite @Rewind`), "
                    "then try again. Nothing was changed.",
                )
            )
        return f"<{link}|in <#{channel}>>" if link else f"in <#{channel}>"

    async def _run_plan(self, value: ButtonValue, user: str) -> str:
        actor = await self.groups.actor(user)
        if value.t == GROUP_PLAN:
            return reply_text(await self.dispatcher.run_group_plan(value.i, value.o, actor))
        return reply_text(await self.dispatcher.run_plan(value.i, actor))

    # ---- buttons ------------------------------------------------------------------------

    async def ack_action(self, body: dict[str, Any], ack: AsyncAck) -> None:
        await ack()
        self.after.later(functools.partial(self.run_action, body))

    async def run_action(self, body: dict[str, Any]) -> None:
        await self._run_action(body, self.responses.to(body.get("response_url")))

    async def _run_action(self, body: dict[str, Any], respond: Respond) -> None:
        action = body["actions"][0]
        user = body["user"]["id"]
        value = ButtonValue.parse(action.get("value", ""))
        try:
            choice = CHOICE[Action(action["action_id"])]
        except (KeyError, ValueError):
            choice = ""
        if not await self.store_up():
            await _tell(respond, STORE_AWAY)
            return
        if value is None or not choice:
            await self.incidents.audit_refusal(
                value.i if value else "", user, choice or "an unknown button", "not a Rewind button"
            )
            await _tell(respond, "That button is not one of mine; nothing changed.")
            return
        key = _hash(f"{value.i}:{value.t}:{choice}:{user}:{action.get('action_ts', '')}")
        if not await self._first_time("act", key):
            return  # a replayed payload
        try:
            if choice == "run_plan":
                said = await self._run_plan(value, user)
                await respond(text=said, response_type="ephemeral", replace_original=False)
                return
            actor = await self.groups.actor(user)
            await self.incidents.answer(value.i, Answer(value.t, actor, choice, value.o))
        except UserFacingError as exc:
            await _tell(respond, mrkdwn.render(exc.message))
        except StoreUnavailable:
            log.warning("button %s: Redis unreachable", action.get("action_id"))
            await _tell(respond, STORE_LOST)
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("button failed [error id %s]", error_id)
            await _tell(respond, f"Something went wrong (error id `{error_id}`); nothing changed.")

    async def home(self, event: dict[str, Any], client: Any) -> None:
        open_ = await self.store.open_incidents()
        await client.views_publish(user_id=event["user"], view=blocks.home(open_))

    async def _first_time(self, kind: str, key: str) -> bool:
        return await self.store.first_time(f"{kind}:{key}", ttl=3600)


@functools.cache
def _help() -> str:
    return mrkdwn.render(HELP)  # the same words every time: rendered once


def _command_key(body: dict[str, Any]) -> str:
    return _hash(str(body.get("trigger_id") or _digest(body)))


def _hash(key: str) -> str:
    """Idempotency keys from what a payload says: fixed size, whatever was sent."""
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]


def _digest(body: dict[str, Any]) -> str:
    raw = "|".join(str(body.get(k, "")) for k in ("user_id", "channel_id", "text", "response_url"))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


async def _tell(respond: Respond, text: str) -> None:
    await respond(text=f":warning: {text}", response_type="ephemeral", replace_original=False)


Track = Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]


def as_is(listener: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    return listener


def register(bolt: AsyncApp, front: SlackFront) -> None:
    """No lazy listeners: each ack queues its own work (`AfterAck`), without Bolt's deep copy
    of the request for a lazy listener."""
    bolt.command("/rollback")(front.ack_command)
    for action in Action:
        bolt.action(action.value)(front.ack_action)
    home: Callable[..., Awaitable[None]] = front.home
    bolt.event("app_home_opened")(home)
