"""What a step body gets to work with, and what it gives back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.config.apps_file import AppConfig, AppsFile, HostConfig
from bot.ports import (
    AuditEntry,
    CommandResult,
    Decide,
    Directory,
    HostRunner,
    Notifier,
    Repos,
    ScriptCommand,
)
from bot.workflow.errors import HostError
from bot.workflow.facts import Facts, StepFacts
from bot.workflow.messages import Block, Inline, message
from bot.workflow.model import Criterion, HostResult, Incident, StepId
from runners import templates

SILENCE = 10.0  # seconds: the longest the thread may stay silent while a step waits


@dataclass
class Outcome:
    """A step's result. Failures are raised as `StepError` instead."""

    summary: str
    hosts: dict[str, HostResult] = field(default_factory=dict)
    facts: StepFacts | None = None
    criteria: dict[Criterion, bool] = field(default_factory=dict)
    skip: tuple[StepId, ...] = ()


@dataclass(frozen=True)
class Planned:
    """One command a step would run, values filled in; `changes` is False when it only reads.

    Steps build their commands through functions that return these, so the plan of a rollback
    (`bot.plan`) shows exactly what the run would send."""

    name: str
    command: str
    changes: bool = True
    note: str = ""


@dataclass
class StepContext:
    incident: Incident
    step: StepId
    app: AppConfig
    apps: AppsFile
    hosts: HostRunner
    notifier: Notifier
    repos: Repos  # git: the apps' repositories and the reports' checkout
    workspace: Path  # where the bot keeps its clones and scratch files
    fence: Callable[[], Awaitable[None]]  # raises if this incident lost its app lock
    timeline: Callable[[], Awaitable[list[AuditEntry]]]
    heartbeat: Callable[[], Awaitable[None]] = field(default=lambda: asyncio.sleep(0))
    people: Directory | None = None  # names for words read outside the chat (the report)
    # A group's lead: every member (the lead first) with its timeline, for the group's report.
    members: Callable[[], Awaitable[list[tuple[Incident, list[AuditEntry]]]]] | None = None

    @property
    def facts(self) -> Facts:
        return self.incident.facts

    async def say(self, *parts: Block | Inline) -> None:
        """A reply in the thread: words, `Emphasis`, `Code`, `Mark`, a `CodeBlock`… (in a
        group's one thread, the notifier names the app: `bot.incidents.member_names`)."""
        await self.notifier.say(self.incident, message(*parts))

    async def waiting(self, key: str, text: str | None) -> None:
        """What the step waits for, on the parent's status line (None: no longer waiting).

        Nothing may leave the thread silent for more than `SILENCE` seconds."""
        waits = self.incident.facts.waiting
        if waits.get(key) == text:
            return  # unchanged (or already not waiting): nothing to redraw
        if text:
            waits[key] = text
        else:
            del waits[key]
        await self.notifier.update_parent(self.incident)

    async def out(self, host: str, line: str) -> None:
        # In a group's one thread, a host's lines say which app's host it is.
        where = f"{self.app.name}/{host}" if self.incident.group is not None else host
        await self.notifier.output(self.incident, self.step, where, line)

    def command(self, name: str, host: HostConfig, **values: str) -> str | None:
        return templates.build(self.app, host, name, **values)

    async def run(
        self,
        host: HostConfig,
        command: str,
        *,
        timeout: float | None = None,
        stream: bool = True,
        check: bool = False,
        what: str = "command",
    ) -> CommandResult:
        """Run on one host; stream its output into the thread; `check` raises on non-zero."""
        await self.fence()
        limit = timeout or self.app.deploy.timeout
        ticker = asyncio.create_task(self._tick(host.name, _Now(what, limit)))
        try:
            result = await self.hosts.run(
                host.name, command, timeout=limit, on_line=self.out if stream else None
            )
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        await self.waiting(host.name, None)
        return result.check(what) if check else result

    async def run_script(
        self,
        host: HostConfig,
        commands: Sequence[ScriptCommand],
        *,
        decide: Decide | None = None,
        tick: bool = True,
        whats: Sequence[str] | None = None,
    ) -> list[CommandResult | None]:
        """Run `commands` on one host as one script in one session, streaming into the thread.

        Each command is fenced like `run`'s: the script waits for the bot's go before each one,
        and the go is given only while this incident still holds the app and this run the step.
        `tick=False` for a session kept open on purpose between commands (monitoring rounds):
        its length says nothing of a command still running, so the status line is left alone.
        `whats`: each command's name for the status line, which then tells of the command
        running (its name, time and limit) as `run`'s does, not of the whole script.
        """
        limit = self.app.deploy.timeout
        now = _Now("the commands", limit)

        async def fenced(i: int, results: list[CommandResult | None]) -> bool | str:
            await self.fence()
            go = True if decide is None else await decide(i, results)
            if whats is not None and go is not False:
                await self.waiting(host.name, None)  # the last command's ticks are stale
                now.begin(whats[i], commands[i].timeout or limit)
            return go

        ticking = self._tick(host.name, now) if tick else _idle()
        ticker = asyncio.create_task(ticking)
        try:
            return await self.hosts.run_script(
                host.name, commands, timeout=limit, decide=fenced, on_line=self.out
            )
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self.waiting(host.name, None)

    async def _tick(self, host: str, now: _Now) -> None:
        """A long command says so on the status line, every `SILENCE` seconds."""
        while True:
            await asyncio.sleep(SILENCE)
            so_far = time.monotonic() - now.started
            label = "a command" if now.what == "command" else now.what
            await self.waiting(
                host,
                f"{host}: {label} still running — {so_far:.0f} s so far (limit {now.limit:.0f} s)",
            )

    async def run_all(
        self,
        name: str,
        hosts: Sequence[HostConfig] | None = None,
        *,
        concurrency: int | None = None,
        **values: str,
    ) -> dict[str, CommandResult | HostError]:
        """Run command `name` on every host at once (bounded); errors are returned per host."""
        targets = list(hosts if hosts is not None else self.app.hosts)
        limit = asyncio.Semaphore(concurrency or self.app.deploy.concurrency)

        async def one(host: HostConfig) -> CommandResult | HostError:
            cmd = self.command(name, host, **values)
            if cmd is None:
                return HostError(f"no `{name}` command configured", host=host.name)
            async with limit:
                try:
                    return await self.run(host, cmd)
                except HostError as exc:
                    return exc

        results = await asyncio.gather(*(one(h) for h in targets))
        return {h.name: r for h, r in zip(targets, results, strict=True)}


@dataclass
class _Now:
    """What runs on a host now, for its status line: a script's commands take turns."""

    what: str
    limit: float
    started: float = field(default_factory=time.monotonic)

    def begin(self, what: str, limit: float) -> None:
        self.what, self.limit, self.started = what, limit, time.monotonic()


async def _idle() -> None:
    return None


StepBody = Callable[[StepContext], Awaitable[Outcome]]
