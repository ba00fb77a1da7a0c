"""Outgoing webhooks: a signed JSON POST on incident opened, step done, completed and aborted.

Each delivery is a queue job (so a dying process loses none), retried with backoff; a delivery
that still fails is said in the incident's thread. Nothing here ever holds the incident up.

Receivers check `X-Rewind-Signature-256`: `sha256=` + hex HMAC-SHA256 of the raw body, keyed
with the webhook's `secret` from the apps file (the same scheme as GitHub's webhooks).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, Field

from bot.config.apps_file import AppsFile
from bot.incidents.service import EventKind as Kind
from bot.store.keys import webhook_job
from bot.watch.deploys import sign
from bot.workflow.messages import Mark, Message, Status, message
from bot.workflow.model import Incident, StepId, utcnow

log = logging.getLogger(__name__)

DELIVER = "deliver_webhook"
ATTEMPTS = 4
SIGNATURE = "X-Rewind-Signature-256"


class WebhookEvent(BaseModel):
    """The JSON body of every delivery."""

    event: Kind
    delivery: str = Field(default_factory=lambda: secrets.token_hex(8))
    at: datetime = Field(default_factory=utcnow)
    app: str
    environment: str
    incident: str
    status: str
    seq: int  # the incident's version: order events of one incident by it
    requested_by: str
    target: str | None = None
    reason: str = ""
    step: StepId | None = None
    summary: str = ""
    link: str = ""


def event_for(incident: Incident, kind: Kind, step: StepId | None, summary: str) -> WebhookEvent:
    return WebhookEvent(
        event=kind,
        app=incident.app,
        environment=incident.environment,
        incident=incident.id,
        status=incident.status.value,
        seq=incident.version,
        requested_by=incident.requested_by,
        target=incident.target,
        reason=incident.reason,
        step=step,
        summary=summary,
        link=incident.thread.permalink if incident.thread else "",
    )


class Jobs(Protocol):
    """The step queue's other jobs (`bot.store.queue.SaqJobs`)."""

    async def enqueue(
        self, function: str, *, key: str, timeout: int, retries: int, **kwargs: str | int
    ) -> None: ...


class WebhookOutbox:
    """`bot.incidents.service.IncidentEvents`: one queued delivery per webhook of the app."""

    def __init__(self, apps: AppsFile, queue: Jobs) -> None:
        self.apps = apps
        self.queue = queue

    async def incident_event(
        self, incident: Incident, kind: Kind, step: StepId | None = None, summary: str = ""
    ) -> None:
        app = self.apps.app(incident.app)
        if app is None or not app.webhooks:
            return
        event = event_for(incident, kind, step, summary)
        body = event.model_dump_json()
        for index in range(len(app.webhooks)):
            try:
                await self.queue.enqueue(
                    DELIVER,
                    key=webhook_job(event.delivery, index),
                    app=incident.app,
                    index=index,
                    incident_id=incident.id,
                    event=kind,
                    delivery=event.delivery,
                    body=body,
                    timeout=300,
                    retries=1,
                )
            except Exception:  # never let a webhook hold the incident up
                log.exception("incident %s: webhook %d of %s not queued", incident.id, index, kind)


async def post_once(
    session: aiohttp.ClientSession, url: str, secret: str, kind: str, delivery: str, body: str
) -> str:
    """'' when delivered (2xx), else what went wrong."""
    raw = body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Rewind-Webhook",
        SIGNATURE: sign(secret, raw),
        "X-Rewind-Event": kind,
        "X-Rewind-Delivery": delivery,
    }
    try:
        async with session.post(url, data=raw, headers=headers, allow_redirects=False) as resp:
            if 200 <= resp.status < 300:
                return ""
            return f"HTTP {resp.status}"
    except TimeoutError:
        return "no answer within 10 s"
    except aiohttp.ClientError as exc:
        return str(exc) or type(exc).__name__


def deliver_function(
    apps: AppsFile,
    backoff: float,
    failed: Callable[[str, Message], Awaitable[None]],
) -> tuple[str, Callable[..., Awaitable[None]]]:
    """The worker's job: POST with retries; `failed(incident_id, text)` after the last try."""

    async def deliver_webhook(
        ctx: dict[str, Any],
        *,
        app: str,
        index: int,
        incident_id: str,
        event: str,
        delivery: str,
        body: str,
    ) -> None:
        cfg = apps.app(app)
        if cfg is None or index >= len(cfg.webhooks):
            return  # the apps file changed since: the webhook is gone
        hook = cfg.webhooks[index]
        timeout = aiohttp.ClientTimeout(total=10)
        why = ""
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(ATTEMPTS):
                if attempt:
                    await asyncio.sleep(backoff * 4 ** (attempt - 1))
                why = await post_once(
                    session, hook.url, hook.secret.get_secret_value(), event, delivery, body
                )
                if not why:
                    return
                log.warning("webhook %s (%s) attempt %d: %s", _host(hook.url), event, attempt, why)
        await failed(
            incident_id,
            message(
                Mark(Status.WARN),
                f" Webhook to {_host(hook.url)} for `{event}` failed after {ATTEMPTS} "
                f"tries ({why}). The incident goes on; check the receiver.",
            ),
        )

    return DELIVER, deliver_webhook


def _host(url: str) -> str:
    """Scheme, host and port only: a path, a query or a user part may hold a token."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"
