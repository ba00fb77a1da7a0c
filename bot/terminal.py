"""The terminal front: the same workflow when Slack itself is down. Approvals at the prompt."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from bot.apps import AppsFile
from bot.engine import Engine, OpenRequest
from bot.errors import UserFacingError
from bot.ports import Notifier, Store
from bot.settings import Settings
from bot.workflow.machine import Answer
from bot.workflow.model import Gate, GateKind, Incident, StepId
from bot.workflow.policy import Actor
from runners.local import runner_for

Chooser = Callable[[Incident, Gate], Awaitable[tuple[str, str, str]]]  # (choice, option, who)


class InlineQueue:
    """`StepQueue` that runs steps in this process, in order, when drained."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, StepId, int]] = []
        self.engine: Engine | None = None

    async def enqueue_step(self, incident_id: str, step: StepId, attempt: int) -> None:
        self.pending.append((incident_id, step, attempt))

    async def hand_over(self, incident_id: str, step: StepId, attempt: int) -> None:
        self.pending.append((incident_id, step, attempt))

    async def drain(self) -> None:
        assert self.engine is not None
        while self.pending:
            await self.engine.run_step(*self.pending.pop(0))


def terminal_actor(apps: AppsFile, name: str) -> Actor:
    """Whoever has a shell on the bot's machine may operate; approvals still need four eyes."""
    everyone = {g for app in apps.apps.values() for g in (*app.operators, *app.approvers)}
    return Actor(user=name, groups=frozenset(everyone))


def auto_chooser(apps: AppsFile) -> Chooser:
    """`--yes`: roll back, approve, never retry blindly (a failed step ends the run)."""

    async def choose(incident: Incident, gate: Gate) -> tuple[str, str, str]:
        if gate.kind is GateKind.DECISION:
            return "roll_back", "", "terminal-yes"
        if gate.kind is GateKind.RETRY:
            return "abort", "", "terminal-yes"
        if gate.kind is GateKind.APPROVE_DB and incident.facts.get("db_recommended") == "restore":
            return "restore", str(incident.facts.get("db_restore_default", "")), "terminal-yes"
        return "approve", "", "terminal-yes"

    return choose


def prompt_chooser(stream_in: TextIO = sys.stdin, out: TextIO = sys.stdout) -> Chooser:
    async def choose(incident: Incident, gate: Gate) -> tuple[str, str, str]:
        from bot.workflow.machine import CHOICES

        options = sorted(CHOICES[gate.kind])
        while True:
            print(f"\n? {gate.kind.value}: choose one of {', '.join(options)}", file=out)
            out.flush()
            answer = stream_in.readline().strip().lower().replace(" ", "_")
            if answer in options:
                break
            if not answer:
                return "abort", "", getpass.getuser()
        who = getpass.getuser()
        if answer in {"approve", "restore"} and incident.production:
            print("? approver's name (four-eyes: not the requester):", file=out)
            who = stream_in.readline().strip()
            if not who or who == _bare(incident.requested_by):
                print("! four-eyes: another person must approve", file=out)
                return "", "", ""
        option = ""
        if answer == "restore":
            option = str(incident.facts.get("db_restore_default", ""))
        return answer, option, who

    return choose


def _bare(user: str) -> str:
    return user.removeprefix("terminal:")


async def drive(
    engine: Engine,
    queue: InlineQueue,
    store: Store,
    apps: AppsFile,
    req: OpenRequest,
    choose: Chooser,
    out: TextIO,
) -> Incident:
    incident = await engine.open(req)
    try:
        return await _answer_until_done(engine, queue, store, apps, incident.id, choose, out)
    finally:
        await engine.aclose()


async def _answer_until_done(
    engine: Engine,
    queue: InlineQueue,
    store: Store,
    apps: AppsFile,
    incident_id: str,
    choose: Chooser,
    out: TextIO,
) -> Incident:
    while True:
        await queue.drain()
        current = await store.load(incident_id)
        assert current is not None
        if not current.status.open or current.gate is None:
            return current
        choice, option, who = await choose(current, current.gate)
        if not choice:
            continue
        try:
            await engine.answer(
                current.id, Answer(current.gate.token, terminal_actor(apps, who), choice, option)
            )
        except UserFacingError as exc:
            print(f"! {exc}", file=out)


def build_terminal_engine(
    apps: AppsFile, store: Store, notifier: Notifier, workspace: Path
) -> tuple[Engine, InlineQueue]:
    queue = InlineQueue()
    engine = Engine(
        apps=apps,
        store=store,
        notifier=notifier,
        queue=queue,
        workspace=workspace,
        runner_factory=runner_for,
        worker_id="terminal",
    )
    queue.engine = engine
    return engine, queue


async def _store_for(settings: Settings) -> Store:
    """The shared Redis when it answers (locks stay honest), else memory."""
    from bot.store_memory import MemoryStore
    from bot.store_redis import RedisStore, connect

    store = RedisStore(connect(settings.redis_url))
    if await store.ping():
        return store
    print("(Redis unreachable: this incident lives in memory only)", file=sys.stderr)
    return MemoryStore()


async def run_rollback(
    settings: Settings,
    apps: AppsFile,
    app: str,
    version: str | None,
    reason: str,
    yes: bool,
    major: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    from bot.terminal_notifier import TerminalNotifier

    store = await _store_for(settings)
    notifier = TerminalNotifier(out=out, apps=apps, files_dir=settings.workspace / "files")
    engine, queue = build_terminal_engine(apps, store, notifier, settings.workspace)
    user = f"terminal:{getpass.getuser()}"
    chooser = auto_chooser(apps) if yes else prompt_chooser(out=out)
    try:
        incident = await drive(
            engine, queue, store, apps,
            OpenRequest(app, version, reason or "rolled back from the terminal",
                        terminal_actor(apps, user), source="terminal", major=major),
            chooser, out,
        )  # fmt: skip
    except UserFacingError as exc:
        print(f"✗ {exc}", file=out)
        return 1
    print(f"\n{incident.outcome or incident.status.value}", file=out)
    return 0 if incident.status.value == "completed" else 1
