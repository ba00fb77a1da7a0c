"""The registry of the kinds of checks: each kind's module registers its own builder here.

A kind (health URLs, logs, smoke tests, metrics, resource usage) is one module of this package:
its config model, its `Check`, and a builder decorated with `@kind(name, order)` that makes the
kind's checks for one app from a `Site`. A `Site` is what a builder needs of the app and of this
read, built by `bot.steps.signals.site` from the apps file entry (this package may not import
that module, which imports this one). `registry()` imports every module of the package, so a
new kind is found without another file naming it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.checks.base import Check, CheckEnv, Runs
from bot.checks.result import CheckResult, Threshold, inconclusive

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
    """A host the app is deployed on: its name, its workdir, its clock's offset from UTC (s)."""

    name: str
    workdir: str
    utc_offset: int = 0


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


Builder = Callable[[Site], list[Check]]


@dataclass(frozen=True)
class Kind:
    name: str
    order: int  # the registry's order: the order checks are read and listed in
    build: Builder


_KINDS: dict[str, Kind] = {}


def kind(name: str, order: int) -> Callable[[Builder], Builder]:
    """Register the decorated builder as kind `name`; a second of one name is a bug."""

    def register(build: Builder) -> Builder:
        if name in _KINDS and _KINDS[name].build is not build:
            raise RuntimeError(f"two kinds of checks are named {name!r}")
        _KINDS[name] = Kind(name, order, build)
        return build

    return register


def registry() -> dict[str, Kind]:
    """Every kind, in order, once each module of this package has registered its own."""
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{package}.{module.name}")
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
