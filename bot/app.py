"""Assembly: settings + apps file -> store, queue, notifier, engine; the web app and the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from saq import Queue, Worker
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.lazy_listener.async_internals import to_runnable_function
from slack_bolt.lazy_listener.async_runner import AsyncLazyListenerRunner
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.api import add_routes
from bot.apps import AppsFile
from bot.engine import Engine
from bot.metrics import OPEN_INCIDENTS, REGISTRY
from bot.queue import SaqStepQueue, make_queue, make_worker
from bot.redis_conn import Outage, connect, parse_url, persistence_warning
from bot.settings import Settings
from bot.slack_notifier import SlackNotifier, make_client
from bot.store_redis import RedisStore
from bot.watch.jobs import SaqTickQueue, tick_function
from bot.watch.service import WatchService
from bot.watch.store import WatchStore
from handlers.groups import GroupResolver
from handlers.slack import SlackFront, register
from handlers.watch_slack import SlackProposer, WatchFront, register_watch
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
    outage: Outage = field(default_factory=Outage)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.engine.aclose()
        await self.watches.aclose()
        await self.notifier.aclose()
        with contextlib.suppress(Exception):
            await self.queue.disconnect()
        await self.store.r.aclose()


def build_runtime(settings: Settings, apps: AppsFile) -> Runtime:
    outage = Outage()
    store = RedisStore(
        connect(settings.redis_url, outage=outage),
        retention=settings.retention,
        replicas=1 if parse_url(settings.redis_url).sentinel else 0,
    )
    queue = make_queue(
        settings.redis_url, settings.queue_name, outage=outage, heartbeat=settings.heartbeat
    )
    client = make_client(settings.token(), settings.slack_api_url)
    notifier = SlackNotifier(client, apps)
    watches = WatchService(
        apps=apps,
        store=WatchStore(store.r),
        queue=SaqTickQueue(queue, heartbeat=settings.heartbeat),
        proposer=SlackProposer(client),
        runner_factory=runner_for,
        worker_id=settings.worker_id,
    )
    engine = Engine(
        apps=apps,
        store=store,
        notifier=notifier,
        queue=SaqStepQueue(queue, heartbeat=settings.heartbeat),
        workspace=settings.workspace,
        runner_factory=runner_for,
        worker_id=settings.worker_id,
    )
    watches.engine = engine
    rt = Runtime(settings, apps, store, queue, client, notifier, engine, watches, outage)
    outage.listeners.append(lambda since, seconds: rt.spawn(say_store_was_away(rt, since, seconds)))
    return rt


async def say_store_was_away(rt: Runtime, since: datetime, seconds: float) -> None:
    """In the thread of every open incident: Redis was away, from when, for how long.

    Every process that saw the outage calls this; the first one per Redis server (its run id
    changes on a restart or a failover) and incident says it.
    """
    try:
        server = str((await rt.store.r.info("server")).get("run_id", ""))[:12]
        for incident in await rt.store.open_incidents():
            if incident.thread is None or not incident.thread.ts:
                continue
            if not await rt.store.first_time(f"away:{incident.id}:{server}", ttl=60):
                continue
            took = f"{seconds:.0f} s" if seconds >= 1 else "under a second"
            await rt.store.audit(
                incident.id, "rewind", "store unreachable", f"{took} from {since:%H:%M:%S} UTC"
            )
            await rt.notifier.say(
                incident,
                f":electric_plug: Rewind could not reach its store (Redis) for {took}, from "
                f"{since:%H:%M:%S} UTC. It reconnected and the incident goes on from where it was.",
            )
    except Exception:
        log.exception("could not tell the open incidents that Redis was away")


async def warn_persistence(rt: Runtime) -> None:
    """At start-up, one line in the log when Redis would lose the incidents on a restart."""
    try:
        warning = await asyncio.wait_for(persistence_warning(rt.store.r), 5)
    except Exception as exc:
        warning = f"cannot read Redis's persistence settings ({exc or type(exc).__name__})"
    if warning:
        log.warning("%s", warning)


class TrackedLazyRunner(AsyncLazyListenerRunner):
    """Bolt's lazy listeners, kept track of so that `serve` can finish them before it exits."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.tasks: set[asyncio.Future[None]] = set()

    def start(self, function: Callable[..., Awaitable[None]], request: AsyncBoltRequest) -> None:
        task = asyncio.ensure_future(
            to_runnable_function(internal_func=function, logger=self.logger, request=request)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, timeout: float) -> None:
        if self.tasks:
            log.info("finishing %d request(s) in flight", len(self.tasks))
            await asyncio.wait(list(self.tasks), timeout=timeout)


def build_bolt(rt: Runtime) -> AsyncApp:
    secret = rt.settings.slack_signing_secret
    bolt = AsyncApp(
        client=rt.client,
        signing_secret=secret.get_secret_value() if secret else None,
        request_verification_enabled=secret is not None,
        # The ack listeners do no I/O; answering as soon as they return saves Bolt's 10 ms poll.
        process_before_response=True,
        name="rewind",
    )
    bolt.listener_runner.lazy_listener_runner = TrackedLazyRunner(log)
    groups = GroupResolver(rt.client, rt.apps)
    register(bolt, SlackFront(rt.engine, rt.store, groups))
    register_watch(bolt, WatchFront(rt.watches, groups))
    return bolt


def lazy_runner(bolt: AsyncApp) -> TrackedLazyRunner:
    runner = bolt.listener_runner.lazy_listener_runner
    assert isinstance(runner, TrackedLazyRunner)
    return runner


RUNTIME = web.AppKey("runtime", Runtime)
BOLT = web.AppKey("bolt", AsyncApp)


async def slack_events(request: web.Request) -> web.Response:
    bolt = request.app[BOLT]
    response = await bolt.async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(response)


async def healthz(request: web.Request) -> web.Response:
    try:
        ok = await asyncio.wait_for(request.app[RUNTIME].store.ping(), 2)
    except TimeoutError:
        ok = False
    return web.json_response({"redis": ok}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    with contextlib.suppress(Exception):
        OPEN_INCIDENTS.set(len(await request.app[RUNTIME].store.open_incidents()))
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def web_app(rt: Runtime, *, with_worker: bool = False) -> web.Application:
    app = web.Application()
    app[RUNTIME] = rt
    app[BOLT] = build_bolt(rt)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_routes(app, rt)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        rt.spawn(warn_persistence(rt))
        worker = build_worker(rt) if with_worker else None
        task = asyncio.create_task(worker.start()) if worker else None
        yield
        # aiohttp has stopped taking requests and finished the ones in flight; their lazy
        # halves (opening an incident, a click) finish here before anything is closed.
        await lazy_runner(app[BOLT]).drain(SERVE_DRAIN)
        if worker is not None and task is not None:
            await stop_worker(rt, worker, task)
        await rt.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


SERVE_DRAIN = 30.0  # seconds `serve` gives requests in flight when told to stop


def build_worker(rt: Runtime) -> Worker[Any]:
    s = rt.settings

    async def startup() -> None:
        count = await rt.engine.reconcile()
        if count:
            log.info("re-enqueued %d running incident(s) after start", count)
        count = await rt.watches.reconcile()
        if count:
            log.info("took over %d deploy watch(es) after start", count)

    async def reconcile() -> int:
        await rt.watches.close_idle()
        return await rt.engine.reconcile() + await rt.watches.reconcile()

    worker = make_worker(
        rt.queue,
        rt.engine.run_step,
        heartbeat=s.heartbeat,
        sweep=s.sweep,
        concurrency=s.worker_concurrency,
        worker_id=s.worker_id,
        startup=startup,
        reconcile=reconcile,
        functions=[tick_function(rt.watches.tick, s.heartbeat)],
    )
    worker.SIGNALS = []  # SIGTERM is ours: a drain (`stop_worker`), not saq's cancel
    return worker


async def stop_worker(rt: Runtime, worker: Worker[Any], task: asyncio.Task[None]) -> None:
    """Stop taking jobs; hand repeatable steps over at their next command; let the others end.

    A step that is not safe to repeat (the database downgrade) runs to its end, for up to
    REWIND_DRAIN seconds; after that it is cut and another worker pauses it for a person.
    """
    rt.engine.draining = True
    event = getattr(worker, "event", None)
    if event is not None:
        event.set()  # no new jobs
    deadline = time.monotonic() + rt.settings.drain
    if worker.job_task_contexts:
        log.info("stopping: waiting for %d step(s) in flight", len(worker.job_task_contexts))
    # saq has no event for "my jobs are finished"; its job contexts go when a job is recorded.
    while worker.job_task_contexts and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    await worker.stop()
    try:
        await asyncio.wait_for(task, 5)
    except (TimeoutError, asyncio.CancelledError):
        log.warning("worker did not stop within 5 s")


async def run_worker(rt: Runtime) -> None:
    """The worker until SIGTERM/SIGINT, then a drain (see `stop_worker`)."""
    await warn_persistence(rt)
    worker = build_worker(rt)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.create_task(worker.start())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await stop_worker(rt, worker, task)
