"""Assembly: settings + apps file -> store, queue, notifier, incident service, step runner, watch;
the web app and the worker."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.app.api import STORE_WAIT, add_routes, bounded_read, store_away
from bot.app.webhooks import WebhookOutbox, deliver_function
from bot.config.apps_file import AppsFile
from bot.config.settings import Settings
from bot.fronts.slack.app import SlackApp, slack_app
from bot.fronts.slack.chat import SlackChat
from bot.fronts.slack.directory import SlackDirectory
from bot.fronts.slack.groups import GroupResolver
from bot.fronts.slack.listeners import SlackFront
from bot.fronts.slack.notifier import SlackNotifier
from bot.fronts.slack.slack_api import RewindWebClient, make_client
from bot.fronts.slack.watch_slack import SlackProposer, WatchFront
from bot.incidents.host_runners import HostRunners, open_in
from bot.incidents.left_copies import LeftCopies
from bot.incidents.service import IncidentService
from bot.incidents.step_runner import StepRunner
from bot.plan.build import Planner
from bot.ports import Store
from bot.store.connection import Outage, lost
from bot.store.queue import (
    RewindQueue,
    RewindWorker,
    SaqJobs,
    SaqStepQueue,
    make_queue,
    make_worker,
)
from bot.store.stores import RedisStores, open_store
from bot.store.ticks import SaqTickQueue, tick_function
from bot.telemetry.metrics import REGISTRY, refresh
from bot.telemetry.redaction import install_log_redaction
from bot.watch.hooks import IncidentHooks
from bot.watch.service import WatchService
from bot.workflow.messages import Message, words
from runners.git import GitRepos
from runners.local import runner_for

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    apps: AppsFile
    store: Store  # the incidents (stores.incidents)
    queue: RewindQueue
    client: RewindWebClient
    notifier: SlackNotifier
    incidents: IncidentService
    steps: StepRunner
    watches: WatchService
    stores: RedisStores
    outage: Outage = field(default_factory=Outage)
    _tasks: set[asyncio.Future[None]] = field(default_factory=set)

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Future[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.steps.aclose()
        await self.watches.aclose()
        await self.notifier.aclose()
        # A client still reconnecting to a Redis that is away holds its pool's lock for up to a
        # minute: its disconnect would wait that long, and SIGTERM must end an idle process.
        closing = asyncio.gather(
            self.queue.disconnect(), self.stores.aclose(), return_exceptions=True
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing, CLOSE_WAIT)


CLOSE_WAIT = 1.0  # seconds to close the Redis clients; nothing is left to flush in them


def build_runtime(settings: Settings, apps: AppsFile, *, pacing: float = 1.0) -> Runtime:
    """`pacing`: seconds between two messages to one Slack channel (Slack's limit is about one
    a second); only in-process tests, against a Slack stand-in without that limit, pass less."""
    install_log_redaction()
    outage = Outage()  # one per process: every client of it reports here
    stores = open_store(
        settings.redis_url, outage=outage, retention=settings.retention, owner=settings.worker_id
    )
    store = stores.incidents
    queue = make_queue(
        settings.redis_url, settings.queue_name, outage=outage, heartbeat=settings.heartbeat
    )
    client = make_client(settings.token(), settings.slack_api_url)
    notifier = SlackNotifier(client, apps, min_interval=pacing)
    # Built in the order they need each other: the incidents ask the watch's store (hooks), the
    # watch opens incidents, and the step runner closes an ended incident's connections.
    runners = HostRunners(runner_for, still_open=open_in(store))
    incidents = IncidentService(
        apps=apps,
        store=store,
        notifier=notifier,
        queue=SaqStepQueue(queue, heartbeat=settings.heartbeat),
        repos=GitRepos(settings.workspace),
        watch=IncidentHooks(stores.watches),
        events=WebhookOutbox(apps, SaqJobs(queue)),
        ended=runners.close,
        left=LeftCopies(apps, runner_for).remove,
        people=SlackDirectory(client),
    )
    steps = StepRunner(
        incidents, runners=runners, workspace=settings.workspace, worker_id=settings.worker_id
    )
    watches = WatchService(
        apps=apps,
        store=stores.watches,
        queue=SaqTickQueue(queue, heartbeat=settings.heartbeat),
        proposer=SlackProposer(client),
        runner_factory=runner_for,
        worker_id=settings.worker_id,
        workspace=settings.workspace,
        incidents=incidents,
    )
    rt = Runtime(
        settings,
        apps,
        store,
        queue,
        client,
        notifier,
        incidents,
        steps,
        watches,
        stores,
        outage,
    )
    outage.listeners.append(lambda since, seconds: rt.spawn(say_store_was_away(rt, since, seconds)))
    return rt


async def say_store_was_away(rt: Runtime, since: datetime, seconds: float) -> None:
    """In the thread of every open incident: Redis was away, from when, for how long.

    Every process that saw the outage calls this; the first one per Redis server (its run id
    changes on a restart or a failover) and incident says it.
    """
    try:
        server = await rt.stores.server_id()
        for incident in await rt.store.open_incidents():
            if incident.thread is None or not incident.thread.ts:
                continue
            if not await rt.store.first_time(f"away:{incident.id}:{server}", ttl=60):
                continue
            took = f"{seconds:.0f} s" if seconds >= 1 else "under a second"
            await rt.store.audit(
                incident.id, "rewind", "store unreachable", f"{took} from {since:%H:%M:%S} UTC"
            )
            await rt.incidents.notifier.say(
                incident,
                words(
                    f"🔌 Rewind could not reach its store (Redis) for {took}, from "
                    f"{since:%H:%M:%S} UTC. It reconnected and the incident goes on from where "
                    "it was."
                ),
            )
    except Exception:
        log.exception("could not tell the open incidents that Redis was away")


async def warn_persistence(rt: Runtime) -> None:
    """At start-up, one line in the log when Redis would lose the incidents on a restart."""
    try:
        warning = await asyncio.wait_for(rt.stores.persistence_warning(), 5)
    except Exception as exc:
        warning = f"cannot read Redis's persistence settings ({exc or type(exc).__name__})"
    if warning:
        log.warning("%s", warning)


def build_slack(rt: Runtime) -> SlackApp:
    """The Slack front: Bolt with Rewind's listeners (`bot.fronts.slack.app`)."""
    secret = rt.settings.slack_signing_secret
    groups = GroupResolver(rt.client, rt.apps)
    planner = Planner(rt.incidents, runner_for, rt.settings.workspace)
    front = SlackFront(rt.incidents, planner, rt.store, groups, rt.notifier, rt.stores.commands)
    watch = WatchFront(rt.watches.proposals, groups)
    return slack_app(rt.client, secret.get_secret_value() if secret else None, front, watch)


RUNTIME = web.AppKey("runtime", Runtime)
SLACK = web.AppKey("slack", SlackApp)


async def healthz(request: web.Request) -> web.Response:
    """200 when Redis answers; 503 with a reason within a second when it does not."""
    rt = request.app[RUNTIME]

    async def ping() -> web.Response:
        if not await rt.store.ping():
            return store_away("no answer to PING")
        return web.json_response({"redis": True})

    answer = await bounded_read(rt, ping)
    if answer.status != 200:
        answer = web.json_response(
            {"redis": False, **json.loads(answer.text or "{}")}, status=answer.status
        )
    return answer


async def metrics(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]

    async def states() -> list[str]:
        return [i.status.value for i in await rt.store.open_incidents()]

    async def queued() -> int:
        return int(await rt.queue.count("queued"))

    if rt.outage.since is None:  # Redis away: the figures kept in this process still go out
        try:
            await asyncio.wait_for(refresh(states, queued), STORE_WAIT)
        except Exception as exc:
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


def web_app(
    rt: Runtime,
    *,
    with_worker: bool = False,
    socket_mode: SlackApp | None = None,
) -> web.Application:
    """`/slack/events`, `/healthz`, `/metrics` and the API.

    `socket_mode`: the Bolt app (from `build_slack`) that a Socket Mode handler feeds. Then no
    `/slack/events` (nothing unsigned may reach Bolt), but the same recovery of commands acked
    by a dead process, and the same drain of the work after the acks at shutdown.
    """
    app = web.Application()
    app[RUNTIME] = rt
    slack = socket_mode if socket_mode is not None else build_slack(rt)
    app[SLACK] = slack
    if socket_mode is None:
        app.router.add_post("/slack/events", slack.events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_routes(app, rt)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        rt.spawn(warn_persistence(rt))
        rt.stores.commands.open_quick_line()
        worker = build_worker(rt) if with_worker else None  # aiohttp owns SIGTERM here
        task = asyncio.create_task(worker.start()) if worker else None
        held = asyncio.create_task(deliver_held(rt)) if worker is None else None
        stopping = asyncio.Event()
        recovering = asyncio.create_task(recover_commands(slack.front, stopping))
        # What is built by now lives as long as the process: out of the garbage collector's
        # sight, so that a full collection amid a burst of acks walks only what the requests
        # made, not the 100,000 objects of Rewind's start (bare Bolt's are far fewer).
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()  # collectable again: a process that runs several apps (the tests) leaks none
        stopping.set()
        # While Redis is away the recovery is only reconnecting: nothing to finish, no wait.
        wait = RECOVERY_WAIT if rt.outage.since is None else 0.5
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(recovering, wait)
        if held is not None and not held.done():
            held.cancel()
        # aiohttp has stopped taking requests and finished the ones in flight; the work after
        # their acks (opening an incident, a click) ends here before anything is closed. (In
        # Socket Mode the handler was closed first: no new envelope comes in meanwhile.)
        await slack.drain(SERVE_DRAIN)
        await slack.aclose()
        if worker is not None and task is not None:
            await stop_worker(rt, worker, task)
        await rt.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


async def recover_commands(front: SlackFront, stopping: asyncio.Event, every: float = 2.0) -> None:
    """Commands acked by a web process that died before carrying them out: done here.

    Stopped by `stopping`, not by cancelling: a cancellation that lands inside a Redis call
    can be swallowed by the client, and the loop would never end.
    """
    while not stopping.is_set():
        try:
            await front.recover()
        except Exception as exc:
            if lost(exc):  # Redis is away: its outage has been said once
                log.debug("pending commands: not recovered this time (%s)", exc)
            else:
                log.exception("pending commands: not recovered this time")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every)


async def deliver_held(rt: Runtime) -> None:
    """Stakeholder notices the terminal front kept while Slack was down, posted now."""
    from bot.fronts.held_notices import deliver

    try:
        await deliver(rt.stores.held, rt.store, SlackChat(rt.client))
    except Exception:
        log.exception("held stakeholder notices: not delivered this time")


SERVE_DRAIN = 30.0  # seconds `serve` gives requests in flight when told to stop
RECOVERY_WAIT = 5.0  # seconds `serve` lets a recovery of acked commands under way end


def build_worker(rt: Runtime) -> RewindWorker:
    s = rt.settings

    async def startup() -> None:
        await deliver_held(rt)
        count = await rt.incidents.reconcile()
        if count:
            log.info("re-enqueued %d running incident(s) after start", count)
        count = await rt.watches.reconcile()
        if count:
            log.info("took over %d deploy watch(es) after start", count)

    async def failed(incident_id: str, text: Message) -> None:
        incident = await rt.store.load(incident_id)
        if incident is not None:
            await rt.incidents.notifier.say(incident, text)

    async def reconcile() -> int:
        await rt.watches.close_idle()
        return await rt.incidents.reconcile() + await rt.watches.reconcile()

    worker = make_worker(
        rt.queue,
        rt.steps.run_step,
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
    worker.SIGNALS = []  # SIGTERM is ours: a drain (`stop_worker`), not saq's cancel
    return worker


async def stop_worker(rt: Runtime, worker: RewindWorker, task: asyncio.Task[None]) -> None:
    """Stop taking jobs; hand repeatable steps over at their next command; let the others end.

    A step that is not safe to repeat (the database downgrade) runs to its end, for up to
    REWIND_DRAIN seconds; after that it is cut and another worker pauses it for a person.
    """
    rt.steps.draining = True
    if isinstance(rt.queue, RewindQueue):
        # No new job. (Not saq's stop event: saq would then cancel the running steps at once.)
        rt.queue.paused = True
    deadline = time.monotonic() + rt.settings.drain
    if worker.job_task_contexts:
        log.info("stopping: waiting for %d job(s) in flight", len(worker.job_task_contexts))
    # saq has no event for "my jobs are finished"; its job contexts go when a job is recorded.
    while worker.job_task_contexts and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    await worker.stop()
    try:
        await asyncio.wait_for(task, 5)
    except (TimeoutError, asyncio.CancelledError):
        log.warning("worker did not stop within 5 s")


async def run_worker(rt: Runtime, *, metrics_sock: socket.socket | None = None) -> None:
    """The worker until SIGTERM/SIGINT, then a drain (see `stop_worker`)."""
    runner: web.AppRunner | None = None
    if metrics_sock is not None:
        runner = web.AppRunner(metrics_app(rt), access_log=None)
        await runner.setup()
        await web.SockSite(runner, metrics_sock).start()
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
        if runner is not None:
            await runner.cleanup()
