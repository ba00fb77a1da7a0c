"""Bolt listeners: `/rollback`, the buttons, and the App Home tab.

Ack first (well inside Slack's 3 seconds); anything that needs the repo, Redis or other Slack
calls runs after the ack, as a lazy listener, and answers through the command's `response_url`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.engine import Engine, OpenRequest, policy_for
from bot.errors import UserFacingError
from bot.ports import Store
from bot.workflow.machine import Answer
from bot.workflow.policy import Right
from handlers import blocks
from handlers.commands import HELP, Command, parse
from handlers.groups import GroupResolver
from handlers.ids import CHOICE, Action, ButtonValue

log = logging.getLogger(__name__)
STORE_AWAY = "Rewind cannot reach its store (Redis); nothing was changed. Try again in a minute."
STORE_LOST = (
    "Rewind lost its store (Redis) while doing this, so it may be half done: "
    "`/rollback status` in a minute shows where things stand."
)
STORE_CHECK = 1.0  # seconds: a Redis that is away is said well within Slack's 3 s
_STORE_ERRORS = (RedisConnectionError, RedisTimeoutError)


class SlackFront:
    """What the Slack listeners need: the engine, the store, and group membership."""

    def __init__(self, engine: Engine, store: Store, groups: GroupResolver) -> None:
        self.engine = engine
        self.store = store
        self.groups = groups
        # Commands whose ack already said the store is away: their lazy half does nothing.
        self._refused: set[str] = set()

    async def store_up(self) -> bool:
        try:
            return await asyncio.wait_for(self.store.ping(), STORE_CHECK)
        except TimeoutError:
            return False

    # ---- /rollback ----------------------------------------------------------------------

    async def ack_command(self, body: dict[str, Any], ack: AsyncAck) -> None:
        """Fast checks only: parse, known app, version shape, user listed directly."""
        cmd: Command | None = None
        try:
            cmd = parse(body.get("text", ""))
            if cmd.kind == "help":
                await ack(text=HELP)
                return
            if cmd.kind == "start":
                self._quick_start_checks(cmd)
            if not await self.store_up():
                if len(self._refused) > 10_000:
                    self._refused.clear()
                self._refused.add(str(body.get("trigger_id") or _digest(body)))
                await ack(text=f":warning: {STORE_AWAY}")
                return
            if cmd.kind == "start":
                await ack(text=f"Checking `{cmd.app}` {cmd.version or '(previous version)'}…")
                return
            await ack()
        except UserFacingError as exc:
            await ack(text=f":warning: {exc}")

    def _quick_start_checks(self, cmd: Command) -> None:
        """Bad input is refused before anything runs; rights are checked once groups are known."""
        self.engine.app(cmd.app)
        self.engine.check_version(cmd.version)
        if not cmd.reason.strip():
            version = f" {cmd.version}" if cmd.version else ""
            raise UserFacingError(
                "What broke? The runbook asks to confirm the issue first: add a reason, e.g. "
                f"`/rollback {cmd.app}{version} checkout returns 500`."
            )

    async def run_command(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        trigger = str(body.get("trigger_id") or _digest(body))
        if trigger in self._refused:
            self._refused.discard(trigger)
            return  # the ack said the store is away; nothing is done
        cmd: Command | None = None
        try:
            cmd = parse(body.get("text", ""))
            if cmd.kind == "help" or not await self._first_time("cmd", trigger):
                return  # help was the ack; or a Slack retry of a command already handled
            text = await self._dispatch(cmd, body["user_id"])
        except UserFacingError as exc:
            text = f":warning: {exc}"
        except _STORE_ERRORS:
            log.warning("command %r: Redis unreachable", body.get("text", "")[:100])
            text = f":warning: {STORE_LOST}"
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("command failed [error id %s]", error_id)
            text = f":x: Something went wrong (error id `{error_id}`); nothing was started."
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
        incident = await self.store.load(cmd.target)
        if incident is None:
            holder = await self.store.lock_holder(cmd.target)
            incident = await self.store.load(holder) if holder else None
        if incident is None or incident.gate is None:
            return []
        _, gate_blocks = blocks.gate(incident, incident.gate)
        return [*blocks.text_blocks(text), *gate_blocks][:50]

    async def _dispatch(self, cmd: Command, user: str) -> str:
        actor = await self.groups.actor(user)
        if cmd.kind == "start":
            self._quick_start_checks(cmd)
            request = OpenRequest(cmd.app, cmd.version, cmd.reason, actor, major=cmd.major)
            incident = await self.engine.open(request)
            link = incident.thread.permalink if incident.thread else ""
            return (
                f":rewind: Incident `{incident.id}` opened for `{incident.app}`"
                + (f" → `{cmd.version}`" if cmd.version else "")
                + (f". Follow it in the <{link}|thread>." if link else ".")
            )
        if cmd.kind == "list":
            return blocks.incident_list(await self.store.recent_incidents(15))
        if cmd.kind == "status":
            return await self._status(cmd.target)
        if cmd.kind == "cancel":
            found = await self.store.load(cmd.target)
            if found is None:
                raise UserFacingError(f"No incident `{cmd.target}`. `/rollback list` shows them.")
            await self.engine.cancel(found.id, actor)
            return f"Incident `{found.id}` cancelled. The thread says what was rolled back."
        if cmd.kind == "unfreeze":
            app = self.engine.app(cmd.target)
            if reason := policy_for(app).refuse(actor, Right.APPROVE):
                raise UserFacingError(reason)
            freeze = await self.store.unfreeze(app.name)
            if freeze is None:
                return f"`{app.name}` is not frozen."
            return f":sunny: `{app.name}` unfrozen by <@{user}>; deploys may go ahead."
        raise UserFacingError(HELP)

    async def _status(self, target: str) -> str:
        if not target:
            open_ = await self.store.open_incidents()
            return blocks.incident_list(open_) if open_ else "No open incidents."
        incident = await self.store.load(target)
        if incident is None:
            app = self.engine.app(target)
            holder = await self.store.lock_holder(app.name)
            incident = await self.store.load(holder) if holder else None
            if incident is None:
                recent = [i for i in await self.store.recent_incidents(50) if i.app == app.name]
                if not recent:
                    return f"`{app.name}` has no incidents."
                incident = recent[0]
        return blocks.incident_status(incident)

    # ---- buttons ------------------------------------------------------------------------

    async def run_action(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        action = body["actions"][0]
        user = body["user"]["id"]
        value = ButtonValue.parse(action.get("value", ""))
        try:
            choice = CHOICE[Action(action["action_id"])]
        except (KeyError, ValueError):
            choice = ""
        if value is None or not choice:
            await _tell(respond, "That button is not one of mine; nothing changed.")
            return
        if not await self.store_up():
            await _tell(respond, STORE_AWAY)
            return
        key = f"{value.i}:{value.t}:{choice}:{user}:{action.get('action_ts', '')}"
        if not await self._first_time("act", key):
            return  # a replayed payload
        try:
            actor = await self.groups.actor(user)
            await self.engine.answer(value.i, Answer(value.t, actor, choice, value.o))
        except UserFacingError as exc:
            await _tell(respond, str(exc))
        except _STORE_ERRORS:
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


def _digest(body: dict[str, Any]) -> str:
    raw = "|".join(str(body.get(k, "")) for k in ("user_id", "channel_id", "text", "response_url"))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


async def _tell(respond: AsyncRespond, text: str) -> None:
    await respond(text=f":warning: {text}", response_type="ephemeral", replace_original=False)


def register(bolt: AsyncApp, front: SlackFront) -> None:
    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    bolt.command("/rollback")(ack=front.ack_command, lazy=[front.run_command])
    for action in Action:
        bolt.action(action.value)(ack=ack_only, lazy=[front.run_action])
    home: Callable[..., Awaitable[None]] = front.home
    bolt.event("app_home_opened")(home)
