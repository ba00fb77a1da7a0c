"""The apps file's `health:` entries (`HealthCheck`) and the URLs they expand to (`targets`).

Apart from the probes (`health`) so that the kinds' registry can name what its builders read of
an app without importing the modules that register in it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


def check_url(value: str) -> str:
    """http(s)://host… ; `{placeholders}` are filled per host, so they stand for a host here."""
    probe = re.sub(r":\{[A-Za-z_][A-Za-z0-9_]*\}", ":1", value)  # a port from the host's vars
    probe = re.sub(r"\{[A-Za-z_][A-Za-z0-9_]*\}", "x", probe)
    try:
        parts = urlsplit(probe)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"{value[:80]!r} is not a URL: {exc}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(
            f"{value[:80]!r} is not an http(s) URL with a host (e.g. https://myapp.com/healthz)"
        )
    return value


class HealthCheck(BaseModel):
    """One entry of the apps file's `health:`: a URL, and what its answer must be."""

    url: str
    status: int | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")
    timeout: float = 5.0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v)


class Host(Protocol):
    """What `expand` reads of an apps file's host (`bot.config.apps_file.HostConfig`)."""

    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def vars(self) -> Mapping[str, str]: ...


class App(Protocol):
    """What `targets` reads of an apps file's app (`bot.config.apps_file.AppConfig`)."""

    @property
    def name(self) -> str: ...
    @property
    def health(self) -> Sequence[HealthCheck]: ...
    @property
    def hosts(self) -> Sequence[Host]: ...


@dataclass(frozen=True)
class Target:
    """One URL to probe: a health check, expanded for one host when its URL has placeholders."""

    check: HealthCheck
    url: str
    host: str | None = None  # None: the URL is the same for every host (e.g. a load balancer)

    @property
    def label(self) -> str:
        return f"{self.url} ({self.host})" if self.host else self.url


def _fields(url: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(url) if f}


def _check_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"health URL {url!r} ({where}) must be an http:// or https:// URL")
    return url


def targets(app: App) -> list[Target]:
    """Every URL to probe: a URL with placeholders once per host, expanded with its vars."""
    out: list[Target] = []
    for check in app.health:
        fields = _fields(check.url)
        if not fields:
            out.append(Target(check, _check_url(check.url, "health"), None))
            continue
        for host in app.hosts:
            out.append(Target(check, expand(check.url, app, host), host.name))
    return out


def expand(url: str, app: App, host: Host) -> str:
    values = {"app": app.name, "host": host.name, "address": host.address, **host.vars}
    missing = _fields(url) - set(values)
    if missing:
        raise ValueError(
            f"health URL {url!r} uses {sorted(missing)}, which host {host.name} has no vars for"
        )
    return _check_url(url.format(**values), f"host {host.name}")
