"""The registry of the kinds of checks: each kind's module registers its own builder here.

A kind (health URLs, logs, smoke tests, metrics, resource usage) is one module of this package:
its config model, its `Check`, and a builder decorated with `@kind(name, order, ...)` that makes
the kind's checks for one app from a `Site`. A `Site` is what a builder needs of the app and of
this read, built by `bot.steps.signals.site` from the apps file entry (this package may not
import that module, which imports this one). `registry()` imports every module of the package,
so a new kind is found without another file naming it.

How a kind is read is its own policy, given with `@kind` and kept in its `Kind`; Verify and the
monitor read every kind through it, with no list of kinds of their own:
- `settle`: Verify re-reads what does not pass, every `verify.health_interval` for up to
  `verify.health_timeout`, while the app settles after its restart (health URLs while it starts;
  a metric's rate while its window still holds the bad version's errors). The other kinds are
  read once, after the settling ones (logs since the restart, the smoke tests).
- `rounds`: the monitor reads it every round; not the smoke tests, which act on the app.
- `read`: how a batch of its checks is read: each at once (`read_each`, the default), or as the
  smoke tests are, one script per host over the step's `Shell`.
- `missing`: what Verify says when the app has none of this kind (health URLs and smoke tests
  are required; no metric is fine).
- `words`: how Verify says its results, when not as every signal is said (its verdict, value
  and threshold): the runbook's own checks have words people know (`Words`).
A read that repeats every round can go over a session the caller keeps open (`Site.kept`, the
monitor's `Kept`): the logs kind does.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.checks.base import Check, CheckEnv, Ran, Runs, measure_with_before
from bot.checks.result import CheckResult, Threshold, inconclusive
from bot.workflow.messages import Block, Inline

if TYPE_CHECKING:
    import aiohttp

    from bot.checks.base import MetricBase
    from bot.checks.health_config import HealthCheck, Host
    from bot.checks.resources import ResourcesConfig


class LogsView(Protocol):
    """What the logs kind reads of `logs:` (`bot.checks.logs.LogsConfig`)."""

    @property
    def error_pattern(self) -> str: ...


class AppView(Protocol):
    """What builders read of an app's apps file entry (`bot.config.apps_file.AppConfig`)."""

    @property
    def name(self) -> str: ...
    @property
    def health(self) -> Sequence[HealthCheck]: ...
    @property
    def hosts(self) -> Sequence[Host]: ...
    @property
    def logs(self) -> LogsView: ...
    @property
    def smoke(self) -> Iterable[str]: ...
    @property
    def metrics(self) -> Sequence[MetricBase]: ...
    @property
    def resources(self) -> ResourcesConfig | None: ...


@dataclass(frozen=True)
class Spot:
    """A host the app is deployed on: its name, its workdir, its clock's offset from UTC (s),
    and since when its logs count when it differs from the site's (its own restart)."""

    name: str
    workdir: str
    utc_offset: int = 0
    since: datetime | None = None


class Shell(Protocol):
    """The step's runner for commands that act on the app (the smoke tests): fenced before each
    command, their output shown in the thread, several on one host as one script in one
    session. One result per command, each run (raises `HostError` if the host is unreachable)."""

    async def script(self, host: str, commands: Sequence[str]) -> Sequence[Ran]: ...


class NotRead(Exception):
    """A kept session could not give this round's read (it ended, it dropped twice): the next
    round tries again. Any other exception of `Kept.read` is the step's failure."""


class Kept(Protocol):
    """Sessions the caller keeps open on each host across its rounds (the monitor's): a command
    read every round goes over its host's one session instead of a new session each time."""

    async def read(
        self, host: str, write: Callable[[datetime, int], str], timeout: float
    ) -> tuple[Ran, datetime, int]:
        """Runs `write(start, utc_offset)` over `host`'s session, with the start of its window:
        the host's own clock when its session first opened, and the host's UTC offset. Raises
        `NotRead` for a round that could not be read, or `HostError` when the host could not
        be reached before anything was read."""
        ...


Fill = Callable[[str, str, Mapping[str, str]], str]
"""(host, command template, extra values) -> the command, quoted, in the host's workdir.
Raises ValueError, saying why, for a template that cannot be filled in."""


@dataclass(frozen=True)
class Site:
    """What a kind's builder has: the app, where it runs, this read's runner and times."""

    app: AppView
    deploy_hosts: tuple[Spot, ...]  # where the deploy commands run, logs are read, metrics per host
    smoke_host: str
    runner: Runs  # the host runner the caller keeps (its SSH sessions)
    since: datetime  # logs count from here (the restart, or the reported deploy)
    fill: Fill
    template: Callable[[str], str]  # the app's command template by name; '' when it has none
    since_text: Callable[[datetime, int], str]  # `{since}` for a host's logs command
    command_timeout: float = 60.0
    version: str | None = None  # for the metrics' `{version}`
    env: CheckEnv = field(default_factory=CheckEnv)  # the providers' keys
    session: aiohttp.ClientSession | None = None  # the health probes' own, when shared
    shell: Shell | None = None  # the step's, for commands that act on the app (smoke tests)
    kept: Kept | None = None  # sessions kept open across rounds (the monitor's)

    def since_on(self, spot: Spot) -> datetime:
        """Since when `spot`'s logs count: its own restart when known, else the site's."""
        return spot.since if spot.since is not None else self.since


Builder = Callable[[Site], list[Check]]
Reader = Callable[[Sequence[Check], datetime | None], Awaitable[list[CheckResult]]]


async def read_each(checks: Sequence[Check], deployed_at: datetime | None) -> list[CheckResult]:
    """Every check at once; each also before the bad deploy when its time is known and the
    check can read the past (`measure_with_before`)."""
    return list(await asyncio.gather(*(measure_with_before(c, deployed_at) for c in checks)))


Parts = list[Block | Inline]


@dataclass(frozen=True)
class Words:
    """How Verify says a kind's results, from its typed results (`bot.steps.verify_words` has
    the words every other kind is said with)."""

    title: str  # the section's heading in the thread; kinds of one title share a section
    line: Callable[[CheckResult], Parts]  # one result in its section, each part after a newline
    bad: Callable[[CheckResult], str]  # on its host's line, when it does not pass
    failure: Callable[[CheckResult], str]  # in Verify's error, when it does not pass
    good: Callable[[int], str] | None = None  # on its host's line when all n there pass
    status: str = "signals"  # the status line it is waited on (the parent's `waiting` key)
    waiting: Callable[[CheckResult], str] = lambda r: r.name  # while it is read again
    wait_line: Callable[[list[str], str], str] = lambda said, so_far: (
        f"{', '.join(said[:3])} not passing yet — re-reading, {so_far}"
    )


@dataclass(frozen=True)
class Kind:
    """A kind of check: its builder and how its checks are read (see the module's doc)."""

    name: str
    order: int  # the registry's order: the order checks are read and listed in
    build: Builder
    read: Reader = read_each
    settle: bool = True  # Verify re-reads what does not pass while the app settles
    rounds: bool = True  # the monitor reads it every round
    missing: str = ""  # what Verify says when the app has none ('': none is fine)
    words: Words | None = None  # how Verify says it (None: as every signal is said)


_KINDS: dict[str, Kind] = {}


def kind(
    name: str,
    order: int,
    *,
    read: Reader = read_each,
    settle: bool = True,
    rounds: bool = True,
    missing: str = "",
    words: Words | None = None,
) -> Callable[[Builder], Builder]:
    """Register the decorated builder as kind `name`; a second of one name is a bug."""

    def register(build: Builder) -> Builder:
        if name in _KINDS and _KINDS[name].build is not build:
            raise RuntimeError(f"two kinds of checks are named {name!r}")
        _KINDS[name] = Kind(name, order, build, read, settle, rounds, missing, words)
        return build

    return register


def unregister(name: str) -> None:
    """Forget kind `name` (a test's own kind, once the test is done)."""
    _KINDS.pop(name, None)


_FOUND = False


def registry() -> dict[str, Kind]:
    """Every kind registered now, in order; the first call imports every module of this
    package, so that each registers its own."""
    global _FOUND
    if not _FOUND:
        package = __name__.rpartition(".")[0]
        for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
            importlib.import_module(f"{package}.{module.name}")
        _FOUND = True
    return {k.name: k for k in sorted(_KINDS.values(), key=lambda k: k.order)}


@dataclass(frozen=True)
class Unreadable:
    """A check that cannot be made (no command, a value refused): inconclusive, with why."""

    name: str
    host: str
    reason: str
    provider: str = "logs"
    query: str = "(not run)"
    reads_the_past: bool = False

    async def measure(self, at: datetime | None = None) -> CheckResult:
        found = inconclusive(self.name, Threshold(max=0), self.query, self.reason,
                             provider=self.provider)  # fmt: skip
        return replace(found, host=self.host)
