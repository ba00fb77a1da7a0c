"""The deploy watch in Slack: the proposal message, its buttons, and the Dismiss modal."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import BaseModel, ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.apps_file import AppConfig
from bot.fronts.slack import mrkdwn
from bot.fronts.slack.groups import GroupResolver
from bot.watch.proposals import Proposal, Proposals
from bot.workflow.errors import UserFacingError
from bot.workflow.model import ThreadRef

log = logging.getLogger(__name__)

ROLL_BACK = "rewind_watch_roll_back"
DISMISS = "rewind_watch_dismiss"
DISMISS_VIEW = "rewind_watch_dismiss_why"
WHY_BLOCK, WHY_INPUT = "why", "why_text"


class WatchButton(BaseModel):
    """What a proposal's button carries: the watch, and where its message is."""

    w: str
    c: str = ""  # channel of the proposal
    m: str = ""  # ts of the proposal

    def dump(self) -> str:
        return self.model_dump_json(exclude_defaults=True)

    @classmethod
    def parse(cls, raw: str) -> WatchButton | None:
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            return None


# ---- rendering ------------------------------------------------------------------------------


def headline(p: Proposal) -> str:
    """*myapp* `v1.5.0` looks bad since its deploy 4 min ago: … Last good: `v1.4.2`."""
    text = (
        f"*{p.app}* `{p.version}` looks bad since its deploy {p.minutes_since} min ago: "
        f"{p.evidence}."
    )
    if p.last_good:
        return text + f" Last good: `{p.last_good}`."
    return text + (
        f" I know no good version to go back to: `/rollback {p.app} VERSION reason` names one."
    )


def outcome(p: Proposal) -> str:
    a = p.answer
    if a is None:
        return ""
    if a.choice == "roll_back":
        return f":rewind: <@{a.user}> chose *Roll back to {p.last_good}*: incident `{a.incident}`."
    if a.choice == "dismiss":
        return f":no_bell: Dismissed by <@{a.user}>: {a.why}"
    if a.choice == "superseded":
        return f":fast_forward: No longer proposed: {a.why}; its own watch looks at it now."
    if a.incident:
        return (
            f":robot_face: `auto_rollback` is on for *{p.app}*: I started the rollback to "
            f"`{p.last_good}` myself, incident `{a.incident}`."
        )
    return f":warning: `auto_rollback` could not start the rollback — {a.why}"


def proposal_blocks(p: Proposal, ref: ThreadRef | None = None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": headline(p)[:3000]}}
    ]
    origin = [f"deployed by {p.deploy_by}" if p.deploy_by else "", _link(p.deploy_url)]
    context = " · ".join(x for x in [*origin, f"watch `{p.watch_id}`"] if x)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    if p.answer is not None:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": outcome(p)[:3000]}})
        return blocks
    if p.auto:
        note = f":robot_face: `auto_rollback` is on for *{p.app}*: starting the rollback myself…"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": note}})
        return blocks
    value = WatchButton(w=p.watch_id, c=ref.channel if ref else "", m=ref.ts if ref else "")
    buttons: list[dict[str, Any]] = []
    if p.last_good:
        buttons.append(
            {
                "type": "button",
                "action_id": ROLL_BACK,
                "text": {"type": "plain_text", "text": f"Roll back to {p.last_good}"[:75]},
                "style": "danger",
                "value": value.dump(),
            }
        )
    buttons.append(
        {
            "type": "button",
            "action_id": DISMISS,
            "text": {"type": "plain_text", "text": "Dismiss"},
            "value": value.dump(),
        }
    )
    blocks.append({"type": "actions", "block_id": f"watch-{p.watch_id}", "elements": buttons})
    return blocks


def _link(url: str) -> str:
    return f"<{url}|deploy>" if url else ""


def dismiss_view(button: WatchButton, p_app: str, version: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DISMISS_VIEW,
        "private_metadata": button.dump(),
        "title": {"type": "plain_text", "text": "Dismiss the proposal"},
        "submit": {"type": "plain_text", "text": "Dismiss"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": WHY_BLOCK,
                "label": {"type": "plain_text", "text": f"Why is {p_app} {version} fine?"[:2000]},
                "element": {
                    "type": "plain_text_input",
                    "action_id": WHY_INPUT,
                    "multiline": True,
                    "max_length": 500,
                },
            }
        ],
    }


# ---- the Proposer port ----------------------------------------------------------------------


class SlackProposer:
    """`bot.watch.proposals.Proposer`: the proposal in the app's incident channel."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def propose(self, app: AppConfig, proposal: Proposal) -> ThreadRef:
        text = headline(proposal)
        resp = await self.client.chat_postMessage(
            channel=app.incident_channel, text=text, blocks=proposal_blocks(proposal)
        )
        ref = ThreadRef(channel=str(resp["channel"]), ts=str(resp["ts"]))
        if not proposal.auto:  # the buttons carry where their message is, for the modal
            await self._update(ref, proposal)
        return ref

    async def settle(self, app: AppConfig, ref: ThreadRef, proposal: Proposal) -> None:
        await self._update(ref, proposal)
        if proposal.answer is not None and proposal.answer.choice == "dismiss":
            await self._safe_post(ref, outcome(proposal))

    async def _update(self, ref: ThreadRef, proposal: Proposal) -> None:
        try:
            await self.client.chat_update(
                channel=ref.channel,
                ts=ref.ts,
                text=headline(proposal),
                blocks=proposal_blocks(proposal, ref),
            )
        except (SlackApiError, SlackClientError) as exc:
            log.warning("could not update the proposal %s: %s", ref.ts, exc)

    async def _safe_post(self, ref: ThreadRef, text: str) -> None:
        try:
            await self.client.chat_postMessage(channel=ref.channel, thread_ts=ref.ts, text=text)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("could not reply to the proposal %s: %s", ref.ts, exc)


# ---- listeners ------------------------------------------------------------------------------


class WatchFront:
    def __init__(self, service: Proposals, groups: GroupResolver) -> None:
        self.service = service
        self.groups = groups

    async def roll_back(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        button = _button(body)
        if button is None:
            await _tell(respond, "That button is not one of mine; nothing changed.")
            return
        user = body["user"]["id"]
        try:
            actor = await self.groups.actor(user)
            incident = await self.service.roll_back(button.w, actor)
            await respond(
                text=f":rewind: Incident `{incident}` opened; follow it in its thread.",
                response_type="ephemeral",
                replace_original=False,
            )
        except UserFacingError as exc:
            await _tell(respond, mrkdwn.render(exc.message))
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("proposal roll back failed [error id %s]", error_id)
            await _tell(respond, f"Something went wrong (error id `{error_id}`); nothing started.")

    async def open_dismiss(
        self, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        button = _button(body)
        if button is None:
            await _tell(respond, "That button is not one of mine; nothing changed.")
            return
        try:
            actor = await self.groups.actor(body["user"]["id"])
            await self.service.can_dismiss(button.w, actor)
            watch = await self.service.store.load(button.w)
            assert watch is not None
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=dismiss_view(button, watch.app, watch.deploy.version),
            )
        except UserFacingError as exc:
            await _tell(respond, mrkdwn.render(exc.message))

    async def ack_dismiss(self, ack: AsyncAck, view: dict[str, Any]) -> None:
        if not _why(view):
            await ack(response_action="errors", errors={WHY_BLOCK: "Say why, please."})
            return
        await ack()

    async def dismiss(self, body: dict[str, Any], view: dict[str, Any], client: Any) -> None:
        button = WatchButton.parse(str(view.get("private_metadata", "")))
        user = body["user"]["id"]
        if button is None:
            return
        try:
            actor = await self.groups.actor(user)
            await self.service.dismiss(button.w, actor, _why(view))
        except UserFacingError as exc:
            if button.c:
                await client.chat_postEphemeral(
                    channel=button.c, user=user, text=f":warning: {mrkdwn.render(exc.message)}"
                )


def _why(view: dict[str, Any]) -> str:
    values = view.get("state", {}).get("values", {})
    return str(values.get(WHY_BLOCK, {}).get(WHY_INPUT, {}).get("value") or "").strip()


def _button(body: dict[str, Any]) -> WatchButton | None:
    actions = body.get("actions") or [{}]
    return WatchButton.parse(str(actions[0].get("value", "")))


async def _tell(respond: AsyncRespond, text: str) -> None:
    await respond(text=f":warning: {text}", response_type="ephemeral", replace_original=False)


def register_watch(bolt: AsyncApp, front: WatchFront) -> None:
    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    bolt.action(ROLL_BACK)(ack=ack_only, lazy=[front.roll_back])
    bolt.action(DISMISS)(ack=ack_only, lazy=[front.open_dismiss])
    bolt.view(DISMISS_VIEW)(ack=front.ack_dismiss, lazy=[front.dismiss])
