"""Health probes over HTTP(S): one GET per check, judged by status code and/or a JSON subset.

The apps file's `health:` entries (`HealthCheck`, in `health_config`), the probes that judge
them, a probe as a check behind the `Check` protocol (`HealthProbe`), and the `health` kind.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.checks.base import Check
from bot.checks.health_config import App as App
from bot.checks.health_config import HealthCheck as HealthCheck
from bot.checks.health_config import Host as Host
from bot.checks.health_config import Target as Target
from bot.checks.health_config import check_url as check_url
from bot.checks.health_config import expand as expand
from bot.checks.health_config import targets as targets
from bot.checks.kinds import Site, Words, kind
from bot.checks.result import CheckResult, Threshold, Verdict, inconclusive

EXCERPT = 200


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

    @property
    def host(self) -> str | None:
        return self.target.host

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


def _waiting(r: CheckResult) -> str:
    """`web2: /healthz answers 500`: the host, the path, and what it said."""
    parts = urlsplit(r.query)
    path = parts.path or "/"
    got = f"answers {r.status}" if r.status is not None else "does not answer"
    return f"{r.host}: {path} {got}" if r.host else f"{parts.netloc}{path} {got}"


def _wait_line(said: list[str], so_far: str) -> str:
    more = f" (+{len(said) - 3} more)" if len(said) > 3 else ""
    return f"{'; '.join(said[:3])}{more} — retrying, {so_far}"


WORDS = Words(
    title="Health checks",
    line=lambda r: [f"\n{'✅' if r.passed else '❌'} {r.name}: {r.reason}"],
    bad=lambda r: f"{r.query}: {r.reason}",
    failure=lambda r: f"health: {r.name} {r.reason}",
    good=lambda n: f"health {n}/{n}",
    status="health",
    waiting=_waiting,
    wait_line=_wait_line,
)


@kind("health", order=10, missing="no health checks configured (health:)", words=WORDS)
def health_checks(site: Site) -> list[Check]:
    """One probe per health URL, per host for a URL with placeholders; Verify asks again what
    fails while the app starts (`settle`). Raises ValueError for a URL that cannot be filled."""
    return [HealthProbe(t, site.session) for t in targets(site.app)]
