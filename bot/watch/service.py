"""Recording a deploy and ticking its watch; the proposal it leads to is `bot.watch.proposals`.

The web process records deploys; workers run the ticks. A tick is a queue
job that reads the watch from Redis, probes once, appends what it saw, judges, and enqueues the
next tick: any worker may run any tick, and a worker killed mid-watch leaves the rest to others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot.config.apps_file import AppConfig, AppsFile
from bot.ports import HostRunner
from bot.watch import judge, probe
from bot.watch.deploys import Deploy, DeployReport, check_report
from bot.watch.model import Answer, Tick, Watch, WatchState
from bot.watch.ports import WatchStore
from bot.watch.proposals import AUTO, IncidentOpener, Proposals, Proposer
from bot.workflow.baseline import Baseline

log = logging.getLogger(__name__)
RUNNER_IDLE = 300.0  # seconds a watch's SSH connections stay open between ticks


class TickQueue(Protocol):
    async def enqueue_tick(self, watch_id: str, n: int, due: float) -> None: ...


class WatchService:
    def __init__(
        self,
        *,
        apps: AppsFile,
        store: WatchStore,
        queue: TickQueue,
        proposer: Proposer,
        runner_factory: Callable[[AppConfig], HostRunner],
        worker_id: str = "",
        workspace: Path | None = None,
        incidents: IncidentOpener | None = None,
    ) -> None:
        self.workspace = workspace
        self.apps = apps
        self.store = store
        self.queue = queue
        self.proposer = proposer
        self.runner_factory = runner_factory
        self.worker_id = worker_id
        self.proposals = Proposals(apps=apps, store=store, proposer=proposer, incidents=incidents)
        self._runners: dict[str, tuple[HostRunner, float]] = {}

    # ---- web side: a deploy is reported -------------------------------------------------

    async def record(self, report: DeployReport, source: str) -> tuple[Deploy, Watch | None]:
        app, deploy = check_report(self.apps, report, source)
        previous = await self.store.deploys(app.name, 20)
        await self.store.record_deploy(deploy)
        if app.watch is None:
            return deploy, None
        baseline = await self.store.baseline(app.name)
        if baseline is not None and baseline.version == deploy.version:
            baseline = None  # a redeploy of the same version: nothing to compare with
        watch = Watch(
            id=secrets.token_hex(4),
            deploy=deploy,
            started_at=deploy.at,
            duration=app.watch.duration,
            interval=app.watch.interval,
            baseline=baseline,
            last_good=await self._last_good(app, deploy, baseline, previous),
        )
        if not await self.store.save(watch):
            raise RuntimeError(f"watch {watch.id} exists already")
        replaced = await self.store.set_latest(app.name, watch.id)
        if replaced:
            await self._supersede(replaced, watch)
        await self.queue.enqueue_tick(watch.id, 0, watch.due(0))
        return deploy, watch

    async def _last_good(
        self, app: AppConfig, deploy: Deploy, baseline: Baseline | None, previous: list[Deploy]
    ) -> str | None:
        """The version the quiet baseline was measured on, else the deploy before this one."""
        if baseline is not None:
            return baseline.version
        for earlier in previous:
            if earlier.version == deploy.version:
                continue
            if await self.store.quarantined(app.name, earlier.version):
                continue
            if await self.store.looked_bad(app.name, earlier.version):
                continue
            return earlier.version
        return None

    async def _tag_before(self, app: AppConfig, version: str) -> str | None:
        """No earlier deploy is known: the tag before the bad version in the app's repo."""
        if self.workspace is None:
            return None
        from bot.workflow.errors import RewindError
        from runners.git import AppRepo

        repo = AppRepo(app.repo, self.workspace / "repos-watch" / app.name)
        try:
            await repo.sync()
            tag = await repo.previous_tag(version)
        except (RewindError, OSError, ValueError) as exc:
            log.warning("watch of %s: no tag before %s: %s", app.name, version, exc)
            return None
        if tag is None or await self.store.quarantined(app.name, tag):
            return None
        return None if await self.store.looked_bad(app.name, tag) else tag

    async def _supersede(self, watch_id: str, by: Watch) -> None:
        """A newer deploy replaces the app's watch; an open proposal no longer fits the hosts."""
        old = await self.store.load(watch_id)
        if old is None or old.state not in {WatchState.WATCHING, WatchState.PROPOSED}:
            return
        proposed = old.state is WatchState.PROPOSED
        old.state = WatchState.SUPERSEDED
        if proposed:
            old.answer = Answer(
                choice="superseded", user=AUTO, why=f"{by.deploy.version} was deployed since"
            )
        else:
            old.evidence = f"superseded by the deploy of {by.deploy.version}"
        if not await self.store.save(old):
            return  # a lost race only means the old watch ticks once more
        app = self.apps.app(old.app)
        if proposed and old.message is not None and app is not None:
            await self.proposer.settle(app, old.message, self.proposals.proposal(old))

    # ---- worker side: one tick ----------------------------------------------------------

    async def tick(self, watch_id: str, n: int) -> None:
        watch = await self.store.load(watch_id)
        if watch is None or not watch.state.ticking:
            return  # ended
        app = self.apps.app(watch.app)
        if app is None or app.watch is None:
            log.warning("watch %s: app %s is no longer watched; stopping", watch.id, watch.app)
            await self._end(watch, WatchState.QUIET, "the app is no longer watched")
            return
        if len(watch.ticks) > n:
            # A retried tick its dead worker had recorded: judge again, which enqueues the next
            # tick (a no-op if it is queued) or proposes what the dead worker could not.
            await self._judge(app, watch)
            return
        wait = watch.due(n) - time.time()
        if wait > 0:
            await asyncio.sleep(min(wait, watch.interval))
        runner = self._runner(app)
        try:
            if not watch.utc_offsets:
                offsets = await asyncio.gather(*(probe.host_offset(runner, h) for h in app.hosts))
                watch.utc_offsets = {h.name: o for h, o in zip(app.hosts, offsets, strict=True)}
            # No earlier deploy known: the repo names the version before, looked up now, off
            # the path of a proposal.
            fallback = None
            if n == 0 and not watch.last_good:
                fallback = self._tag_before(app, watch.deploy.version)
            seen, last_good = await asyncio.gather(
                probe.one_round(
                    n,
                    self.worker_id,
                    app,
                    runner,
                    watch.deploy.at,
                    watch.utc_offsets,
                    datetime.now(UTC),
                    watch.deploy.version,
                ),
                fallback or _none(),
            )
        finally:
            self._runners[app.name] = (runner, time.monotonic())
        updated = await self._append(watch_id, seen, watch.utc_offsets, last_good)
        if updated is None:
            return
        await self._judge(app, updated)

    async def _append(
        self, watch_id: str, seen: Tick, offsets: dict[str, int], last_good: str | None
    ) -> Watch | None:
        for _ in range(20):
            watch = await self.store.load(watch_id)
            if watch is None or not watch.state.ticking or len(watch.ticks) > seen.n:
                return None
            watch.ticks.append(seen)
            watch.utc_offsets = watch.utc_offsets or offsets
            watch.last_good = watch.last_good or last_good
            if watch.first_failure_at is None and judge.tick_failed(seen):
                watch.first_failure_at = seen.at
            if await self.store.save(watch):
                return watch
        return None

    async def _judge(self, app: AppConfig, watch: Watch) -> None:
        assert app.watch is not None
        verdict = judge.verdict(watch, app.watch)
        if verdict is not None:
            watch.state = WatchState.PROPOSED
            watch.proposed_at = datetime.now(UTC)
            watch.evidence = verdict.text()
            if await self.store.save(watch):  # one proposal, whoever judged first
                await self.store.mark_bad(app.name, watch.deploy.version)
                await self.proposals.propose(app, watch)
            return
        n = len(watch.ticks)
        if n >= watch.ticks_planned:
            f = judge.figures(watch)
            await self.store.set_baseline(
                app.name,
                Baseline(
                    version=watch.deploy.version,
                    measured_at=datetime.now(UTC),
                    probes=f.probes,
                    availability=f.availability,
                    p95_ms=f.p95_ms,
                    errors_per_minute=f.errors_per_minute,
                ),
            )
            await self._end(watch, WatchState.QUIET, "within every threshold")
            return
        await self.queue.enqueue_tick(watch.id, n, watch.due(n))

    async def _end(self, watch: Watch, state: WatchState, why: str) -> None:
        for _ in range(20):
            watch.state, watch.evidence = state, watch.evidence or why
            if await self.store.save(watch):
                return
            fresh = await self.store.load(watch.id)
            if fresh is None or not fresh.state.ticking:
                return
            watch = fresh

    def _runner(self, app: AppConfig) -> HostRunner:
        cached = self._runners.pop(app.name, None)
        return cached[0] if cached is not None else self.runner_factory(app)

    async def close_idle(self, idle: float = RUNNER_IDLE) -> None:
        now = time.monotonic()
        for name, (runner, since) in list(self._runners.items()):
            if now - since > idle:
                del self._runners[name]
                with contextlib.suppress(Exception):
                    await runner.close()

    async def aclose(self) -> None:
        await self.close_idle(idle=-1)

    # ---- recovery -----------------------------------------------------------------------

    async def reconcile(self) -> int:
        """Re-enqueue a watch's tick that no worker runs; post a proposal a worker lost."""
        count = 0
        for watch in await self.store.active():
            app = self.apps.app(watch.app)
            if app is None:
                continue
            if watch.state is WatchState.PROPOSED and watch.message is None:
                await self.proposals.propose(app, watch)
                count += 1
            elif watch.state.ticking:
                n = len(watch.ticks)
                late = time.time() - watch.due(n)
                if late > 2 * watch.interval + 5:
                    await self.queue.enqueue_tick(watch.id, n, time.time())
                    count += 1
        return count


async def _none() -> None:
    return None
