"""The HTTP API for CI: deploys in (`/api/deploys`, `/api/github`), the gate (`/api/freeze`).

Nothing is recorded before the caller is authenticated: no token or secret configured means
every call is refused (401), so an install that never set them exposes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from bot.config.apps_file import AppsFile
from bot.config.settings import Settings
from bot.ports import Store
from bot.store.connection import Outage, reason
from bot.watch.deploys import DeployReport, bearer_ok, github_report, parse_report, signature_ok
from bot.watch.service import WatchService
from bot.workflow.errors import StoreError, UserFacingError

log = logging.getLogger(__name__)


class Runtime(Protocol):
    """What the API reads of the running process (`bot.app.assembly.Runtime` is one): declared
    here so that the API needs nothing from the module that builds it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def apps(self) -> AppsFile: ...

    @property
    def store(self) -> Store: ...

    @property
    def watches(self) -> WatchService: ...

    @property
    def outage(self) -> Outage: ...


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


# A read of the store answers within this, or the caller hears the store is away: a CI gate
# must learn "do not deploy" in a second, not after a minute of reconnects.
STORE_WAIT = 0.8
OUTAGE_POLL = 0.05


def store_away(why: str) -> web.Response:
    """503 with a reason: anything but 200 from the gate means "do not deploy"."""
    return web.json_response(
        {
            "error": "store_unavailable",
            "reason": f"Rewind cannot reach its store (Redis): {why}; do not deploy until "
            "/healthz answers 200",
        },
        status=503,
        headers={"Retry-After": "5"},
    )


def away_now(rt: Runtime) -> web.Response | None:
    """The 503 while this process knows Redis is away (an outage is open), else None."""
    since = rt.outage.since
    return None if since is None else store_away(f"away since {since:%H:%M:%S} UTC")


async def bounded_read(rt: Runtime, read: Callable[[], Awaitable[web.Response]]) -> web.Response:
    """A read-only answer from the store, or a 503 within STORE_WAIT; never a 500."""
    if (away := away_now(rt)) is not None:
        return away
    task = asyncio.ensure_future(read())
    deadline = asyncio.get_running_loop().time() + STORE_WAIT
    # The read's client retries for a minute; the first failed try opens the outage: say so then.
    while not task.done() and rt.outage.since is None:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        await asyncio.wait([task], timeout=min(left, OUTAGE_POLL))
    if not task.done():
        task.cancel()
        return away_now(rt) or store_away(f"no answer within {STORE_WAIT:.1f} s")
    try:
        return task.result()
    except (StoreError, OSError) as exc:
        return store_away(reason(exc))


async def guarded_write(rt: Runtime, write: Callable[[], Awaitable[web.Response]]) -> web.Response:
    """A write is refused at once while the store is known to be away, and a store error is a
    503, never a 500. It is not cut short by a timer: a deploy half recorded would be worse."""
    if (away := away_now(rt)) is not None:
        return away
    try:
        return await write()
    except (StoreError, OSError) as exc:
        return store_away(reason(exc))


def _unauthorized(what: str) -> web.Response:
    return web.json_response(
        {"error": f"unauthorized: {what}"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="rewind"'},
    )


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError:
        raise UserFacingError("the body is not JSON") from None


def add_routes(app: web.Application, rt: Runtime) -> None:
    async def deploys(request: web.Request) -> web.Response:
        token = rt.settings.api_token
        secret = token.get_secret_value() if token else None
        if not bearer_ok(request.headers.get("Authorization"), secret):
            what = "REWIND_API_TOKEN is not set" if not secret else "bad or missing bearer token"
            return _unauthorized(what)
        try:
            report = parse_report(await _json(request))
        except UserFacingError as exc:
            return _error(422, str(exc))
        return await guarded_write(rt, lambda: _recorded(rt, report, "api"))

    async def github(request: web.Request) -> web.Response:
        secret = rt.settings.github_webhook_secret
        raw = await request.read()
        key = secret.get_secret_value() if secret else None
        if not signature_ok(request.headers.get("X-Hub-Signature-256"), key, raw):
            what = "GITHUB_WEBHOOK_SECRET is not set" if not key else "bad X-Hub-Signature-256"
            return _unauthorized(what)
        event = request.headers.get("X-GitHub-Event", "")
        if event == "ping":
            return web.json_response({"ok": True, "pong": True})
        if event != "deployment_status":
            return web.json_response({"ignored": f"event {event!r}"}, status=202)
        try:
            report = github_report(json.loads(raw), rt.apps)
        except ValueError:
            return _error(400, "the body is not JSON")
        except UserFacingError as exc:
            return _error(422, str(exc))
        if report is None:
            return web.json_response({"ignored": "not a successful deployment"}, status=202)
        return await guarded_write(rt, lambda: _recorded(rt, report, "github"))

    async def freeze(request: web.Request) -> web.Response:
        return await bounded_read(rt, lambda: freeze_status(rt, request))

    app.router.add_post("/api/deploys", deploys)
    app.router.add_post("/api/github", github)
    app.router.add_get("/api/freeze/{app}", freeze)


async def _recorded(rt: Runtime, report: DeployReport, source: str) -> web.Response:
    try:
        return await _record(rt, report, source)
    except UserFacingError as exc:
        return _error(422, str(exc))


async def _record(rt: Runtime, report: DeployReport, source: str) -> web.Response:
    deploy, watch = await rt.watches.record(report, source)
    held = await rt.watches.store.quarantined(deploy.app, deploy.version)
    log.info("deploy %s of %s %s recorded (%s)", deploy.id, deploy.app, deploy.version, source)
    body: dict[str, Any] = {
        "deploy": deploy.id,
        "app": deploy.app,
        "version": deploy.version,
        "watch": watch.id if watch else None,
        "watching_for": watch.duration if watch else 0,
    }
    if held is not None:
        body["warning"] = f"{deploy.version} is quarantined: {held.reason}"
    return web.json_response(body, status=202)


async def freeze_status(rt: Runtime, request: web.Request) -> web.Response:
    """423 while the app is frozen, an incident holds it, or the version is quarantined."""
    name = request.match_info["app"]
    app = rt.apps.app(name)
    if app is None:
        return web.json_response({"app": name, "error": "unknown app"}, status=404)
    version = request.query.get("version", "")
    if version:
        held = await rt.watches.store.quarantined(app.name, version)
        if held is not None:
            return web.json_response(
                {
                    "app": app.name,
                    "frozen": True,
                    "quarantined": True,
                    "version": held.version,
                    "by": held.by,
                    "reason": held.reason,
                    "incident": held.incident,
                    "link": held.link,
                    "at": held.at.isoformat(),
                    "release": f"/rollback release {app.name} {held.version}",
                },
                status=423,
            )
    holder = await rt.store.lock_holder(app.name)
    named = request.query.get("incident", "")
    if holder is not None and named == holder:
        # The responders' fix for the open incident goes out; routine deploys wait.
        return web.json_response({"app": app.name, "frozen": False, "incident": holder})
    if holder is not None:
        incident = await rt.store.load(holder)
        if incident is not None and incident.status.open:
            link = incident.thread.permalink if incident.thread else ""
            return web.json_response(
                {
                    "app": app.name,
                    "frozen": True,
                    "by": incident.requested_by,
                    "reason": f"incident {incident.id} is open: {incident.reason}",
                    "incident": incident.id,
                    "link": link,
                },
                status=423,
            )
    freeze = await rt.store.frozen(app.name)
    if freeze is None:
        return web.json_response({"app": app.name, "frozen": False})
    return web.json_response({"app": app.name, "frozen": True, **vars(freeze)}, status=423)
