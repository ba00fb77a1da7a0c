"""Health probes over HTTP(S): one GET per check, judged by status code and/or a JSON subset.

The apps file's `health:` entries (`HealthCheck`), the probes that judge them, and a probe as a
check behind the `Check` protocol (`HealthProbe`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import string
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.checks.result import CheckResult, Threshold, Verdict, inconclusive

EXCERPT = 200


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


@dataclass(frozen=True)
class Probe:
    url: str
    ok: bool
    status: int | None
    latency_ms: float
    error: str = ""
    body_excerpt: str = ""
    host: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"{self.status} in {self.latency_ms:.0f} ms"
        got = f"HTTP {self.status}" if self.status is not None else "no answer"
        why = f": {self.error}" if self.error else ""
        return f"{got}{why}"


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


def json_contains(body: Any, expected: Any) -> bool:
    """True when `expected` is a subset of `body`: dicts by key, recursively; all else equal."""
    if isinstance(expected, dict):
        return isinstance(body, dict) and all(
            k in body and json_contains(body[k], v) for k, v in expected.items()
        )
    return bool(body == expected)


def _judge(check: HealthCheck, status: int, text: str) -> str:
    """'' when the answer is what `check` expects, else why not."""
    if check.status is not None and status != check.status:
        return f"expected {check.status}"
    if check.json_ is not None:
        try:
            body = json.loads(text)
        except ValueError:
            return "body is not JSON"
        if not json_contains(body, check.json_):
            return f"body does not contain {json.dumps(check.json_, sort_keys=True)}"
    elif check.status is None and not 200 <= status < 300:
        return "expected a 2xx answer"
    return ""


async def probe(
    session: aiohttp.ClientSession, check: HealthCheck, url: str, host: str | None = None
) -> Probe:
    start = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - start) * 1000

    try:
        timeout = aiohttp.ClientTimeout(total=check.timeout)
        async with session.get(url, timeout=timeout, allow_redirects=False) as resp:
            text = await resp.text(errors="replace")
            latency = elapsed()
            problem = _judge(check, resp.status, text)
            excerpt = text.strip()[:EXCERPT]
            return Probe(url, not problem, resp.status, latency, problem, excerpt, host)
    except TimeoutError:
        return Probe(url, False, None, elapsed(), f"no answer within {check.timeout:g}s", "", host)
    except aiohttp.ClientError as exc:
        return Probe(url, False, None, elapsed(), str(exc) or type(exc).__name__, "", host)


@dataclass(frozen=True)
class HealthProbe:
    """A health URL as a check (`bot.checks.Check`): one GET now, passed or failed. No answer
    is a failure, as it is for a probe; the value is the latency in ms."""

    target: Target
    session: aiohttp.ClientSession | None = None  # None: one of its own for the one GET
    reads_the_past: bool = False

    @property
    def name(self) -> str:
        return self.target.label

    @property
    def query(self) -> str:
        return self.target.url

    async def measure(self, at: datetime | None = None) -> CheckResult:
        if at is not None:
            why = "a health URL is read now only: it has no answer for a past time"
            return inconclusive(self.name, Threshold(), self.query, why, provider="health")
        t = self.target
        if self.session is not None:
            return probe_result(await probe(self.session, t.check, t.url, t.host))
        async with aiohttp.ClientSession() as own:
            return probe_result(await probe(own, t.check, t.url, t.host))


def probe_result(p: Probe) -> CheckResult:
    """A probe as the checks' typed result: `reason` is what it said, as the thread says it."""
    verdict = Verdict.PASSED if p.ok else Verdict.FAILED
    latency = round(p.latency_ms, 2) if p.status is not None else None
    label = f"{p.url} ({p.host})" if p.host else p.url
    return CheckResult(label, verdict, latency, Threshold(), p.url, "health", "ms",
                       reason=p.describe(), host=p.host, status=p.status)  # fmt: skip


async def probe_all(session: aiohttp.ClientSession, todo: Sequence[Target]) -> list[Probe]:
    return list(await asyncio.gather(*(probe(session, t.check, t.url, t.host) for t in todo)))


async def wait_healthy(
    todo: Sequence[Target],
    *,
    within: float,
    every: float,
    session: aiohttp.ClientSession | None = None,
    on_retry: Callable[[list[Probe], float], Awaitable[None]] | None = None,
) -> list[Probe]:
    """Probe until every target is healthy or `within` seconds passed; the last probe of each.

    An app needs a moment after a restart, so a failing target is asked again every `every`
    seconds until the deadline; one that answered well is not asked again."""
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await wait_healthy(
                todo, within=within, every=every, session=own, on_retry=on_retry
            )
    started = time.monotonic()
    deadline = started + within
    last: dict[int, Probe] = {}
    pending = list(range(len(todo)))
    while pending:
        results = await probe_all(session, [todo[i] for i in pending])
        last.update(zip(pending, results, strict=True))
        pending = [i for i in pending if not last[i].ok]
        if not pending or time.monotonic() + every > deadline:
            break
        if on_retry is not None:  # what is still failing, and for how long so far
            await on_retry([last[i] for i in pending], time.monotonic() - started)
        await asyncio.sleep(every)
    return [last[i] for i in range(len(todo))]


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The `pct` percentile (0-100), interpolated between the nearest ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
