"""Assembly: settings + apps file -> store, queue, notifier, engine; the web app and the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from saq import Queue, Worker
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.api import add_routes
from bot.apps_file import AppsFile
from bot.engine import Engine
from bot.metrics import REGISTRY, refresh
from bot.queue import SaqStepQueue, make_queue, make_worker
from bot.redaction import install_log_redaction
from bot.settings import Settings
from bot.store_redis import RedisStore, connect
from bot.watch.jobs import SaqTickQueue, tick_function
from bot.watch.service import WatchService
from bot.watch.store import WatchStore
from bot.webhooks import WebhookOutbox, deliver_function
from handlers.groups import GroupResolver
from handlers.listeners import SlackFront, register
from handlers.notifier import SlackNotifier, make_client
from handlers.watch_slack import SlackProposer, WatchFront, register_watch
from runners.git import GitRepos
from runners.local import runner_for

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    apps: AppsFile
    store: RedisStore
    queue: Queue
    client: AsyncWebClient
    notifier: SlackNotifier
    engine: Engine
    watches: WatchService

    async def aclose(self) -> None:
        await self.engine.aclose()
        await self.watches.aclose()
        await self.notifier.aclose()
        with contextlib.suppress(Exception):
            await self.queue.disconnect()
        await self.store.r.aclose()


def build_runtime(settings: Settings, apps: AppsFile) -> Runtime:
    install_log_redaction()
    store = RedisStore(connect(settings.redis_url))
    queue = make_queue(settings.redis_url, settings.queue_name)
    client = make_client(settings.token(), settings.slack_api_url)
    notifier = SlackNotifier(client, apps)
    watches = WatchService(
        apps=apps,
        store=WatchStore(store.r),
        queue=SaqTickQueue(queue, heartbeat=settings.heartbeat),
        proposer=SlackProposer(client),
        runner_factory=runner_for,
        worker_id=settings.worker_id,
        workspace=settings.workspace,
    )
    engine = Engine(
        apps=apps,
        store=store,
        notifier=notifier,
        queue=SaqStepQueue(queue, heartbeat=settings.heartbeat),
        workspace=settings.workspace,
        runner_factory=runner_for,
        repos=GitRepos(settings.workspace),
        worker_id=settings.worker_id,
        watch=watches,
        events=WebhookOutbox(apps, queue),
    )
    watches.engine = engine
    return Runtime(settings, apps, store, queue, client, notifier, engine, watches)


def build_bolt(rt: Runtime) -> AsyncApp:
    secret = rt.settings.slack_signing_secret
    bolt = AsyncApp(
        client=rt.client,
        logger=_bolt_logger(),
        signing_secret=secret.get_secret_value() if secret else None,
        request_verification_enabled=secret is not None,
        # The ack listeners do no I/O; answering as soon as they return saves Bolt's 10 ms poll.
        process_before_response=True,
        name="rewind",
    )
    groups = GroupResolver(rt.client, rt.apps)
    register(bolt, SlackFront(rt.engine, rt.store, groups, rt.notifier))
    register_watch(bolt, WatchFront(rt.watches, groups))
    return bolt


class _NoTokenWarning(logging.Filter):
    # Bolt reads SLACK_BOT_TOKEN from the environment itself and warns that the client's token
    # wins; it is the same token, so the warning would only alarm whoever reads the log.
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _NoTokenWarning) for f in logger.filters):
        logger.addFilter(_NoTokenWarning())
    return logger


RUNTIME = web.AppKey("runtime", Runtime)
BOLT = web.AppKey("bolt", AsyncApp)


async def slack_events(request: web.Request) -> web.Response:
    bolt = request.app[BOLT]
    stamp = request.headers.get("X-Slack-Request-Timestamp", "")
    if not (stamp.isascii() and stamp.isdigit()) and bolt_verifies(request):
        # slack_sdk would raise on it (and Bolt answer 500): not a request Slack signed.
        return web.Response(status=401, text="invalid request timestamp")
    try:
        bolt_request = await to_bolt_request(request)
    except ValueError:
        # Bolt parses the body before it checks the signature: a body that is not Slack's
        # JSON gets a 401 when unsigned (as any forged request) and a 400 when signed.
        return await not_a_slack_request(request)
    response = await bolt.async_dispatch(bolt_request)
    return await to_aiohttp_response(response)


def bolt_verifies(request: web.Request) -> bool:
    return request.app[RUNTIME].settings.slack_signing_secret is not None


async def not_a_slack_request(request: web.Request) -> web.Response:
    secret = request.app[RUNTIME].settings.slack_signing_secret
    body = await request.read()
    signed = secret is None or SignatureVerifier(secret.get_secret_value()).is_valid_request(
        body, dict(request.headers)
    )
    if not signed:
        return web.Response(status=401, text="invalid request signature")
    log.warning("a signed request to /slack/events had a body that is not Slack's; refused")
    return web.Response(status=400, text="not a Slack request")


async def healthz(request: web.Request) -> web.Response:
    try:
        ok = await asyncio.wait_for(request.app[RUNTIME].store.ping(), 2)
    except TimeoutError:
        ok = False
    return web.json_response({"redis": ok}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]

    async def states() -> list[str]:
        return [i.status.value for i in await rt.store.open_incidents()]

    async def queued() -> int:
        return int(await rt.queue.count("queued"))

    try:
        await asyncio.wait_for(refresh(states, queued), 2)
    except Exception as exc:  # Redis away: the figures kept in this process still go out
        log.warning("metrics: cannot read Redis: %r", exc)
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def metrics_app(rt: Runtime) -> web.Application:
    """A worker's own `/metrics` (on `METRICS_PORT`)."""
    app = web.Application()
    app[RUNTIME] = rt
    app.router.add_get("/metrics", metrics)
    return app


def web_app(rt: Runtime, *, with_worker: bool = False, slack_http: bool = True) -> web.Application:
    """`/slack/events` (unless Slack comes over Socket Mode: then nothing unsigned may reach
    Bolt), `/healthz`, `/metrics` and the API."""
    app = web.Application()
    app[RUNTIME] = rt
    if slack_http:
        app[BOLT] = build_bolt(rt)
        app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_routes(app, rt)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        worker = build_worker(rt) if with_worker else None
        if worker is not None:
            worker.SIGNALS = []  # aiohttp owns SIGTERM here, and stops the worker on cleanup
        task = asyncio.create_task(worker.start()) if worker else None
        held = asyncio.create_task(deliver_held(rt)) if worker is None else None
        yield
        if held is not None and not held.done():
            held.cancel()
        if worker is not None and task is not None:
            await stop_worker(worker, task)
        await rt.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


async def deliver_held(rt: Runtime) -> None:
    """Stakeholder notices the terminal front kept while Slack was down, posted now."""
    from bot.held_notices import deliver

    try:
        await deliver(rt.store.r, rt.store, rt.client)
    except Exception:
        log.exception("held stakeholder notices: not delivered this time")


def build_worker(rt: Runtime) -> Worker[Any]:
    s = rt.settings

    async def startup() -> None:
        await deliver_held(rt)
        count = await rt.engine.reconcile()
        if count:
            log.info("re-enqueued %d running incident(s) after start", count)
        count = await rt.watches.reconcile()
        if count:
            log.info("took over %d deploy watch(es) after start", count)

    async def failed(incident_id: str, text: str) -> None:
        incident = await rt.store.load(incident_id)
        if incident is not None:
            await rt.notifier.say(incident, text)

    async def reconcile() -> int:
        await rt.watches.close_idle()
        return await rt.engine.reconcile() + await rt.watches.reconcile()

    return make_worker(
        rt.queue,
        rt.engine.run_step,
        heartbeat=s.heartbeat,
        sweep=s.sweep,
        concurrency=s.worker_concurrency,
        worker_id=s.worker_id,
        startup=startup,
        reconcile=reconcile,
        functions=[
            tick_function(rt.watches.tick, s.heartbeat),
            deliver_function(rt.apps, s.webhook_backoff, failed),
        ],
    )


async def stop_worker(worker: Worker[Any], task: asyncio.Task[None]) -> None:
    """Stop taking jobs and wait for the loop to end; a step cut short is resumed elsewhere."""
    await worker.stop()
    try:
        await asyncio.wait_for(task, 5)
    except (TimeoutError, asyncio.CancelledError):
        log.warning("worker did not stop within 5 s")


async def run_worker(rt: Runtime, *, metrics_sock: socket.socket | None = None) -> None:
    runner: web.AppRunner | None = None
    if metrics_sock is not None:
        runner = web.AppRunner(metrics_app(rt), access_log=None)
        await runner.setup()
        await web.SockSite(runner, metrics_sock).start()
    worker = build_worker(rt)
    task = asyncio.create_task(worker.start())
    try:
        await asyncio.shield(task)
    finally:
        await stop_worker(worker, task)
        if runner is not None:
            await runner.cleanup()
