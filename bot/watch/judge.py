"""Is the deploy bad? The watch's figures against the thresholds and the baseline. Pure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.checks.health import percentile
from bot.config.apps_file import WatchConfig
from bot.watch.model import Sample, Tick, Watch


@dataclass(frozen=True)
class Figures:
    probes: int
    ok: int
    availability: float | None  # percent
    p95_ms: float | None
    error_lines: int
    errors_per_minute: float
    longest_streak: int  # consecutive failed probes of one URL, the longest seen


def figures(watch: Watch) -> Figures:
    samples = [s for t in watch.ticks for s in t.samples]
    ok = sum(s.ok for s in samples)
    latencies = [s.latency_ms for s in samples if s.latency_ms is not None]
    p95 = percentile(latencies, 95)
    last = watch.ticks[-1] if watch.ticks else None
    errors = sum(last.errors.values()) if last else 0
    minutes = 0.0
    if last is not None:
        minutes = (last.at - watch.deploy.at).total_seconds() / 60
    streaks: dict[tuple[str, str | None], int] = defaultdict(int)
    longest = 0
    for tick in watch.ticks:
        for s in tick.samples:
            key = (s.url, s.host)
            streaks[key] = 0 if s.ok else streaks[key] + 1
            longest = max(longest, streaks[key])
    return Figures(
        probes=len(samples),
        ok=ok,
        availability=round(100 * ok / len(samples), 2) if samples else None,
        p95_ms=round(p95, 1) if p95 is not None else None,
        error_lines=errors,
        # Within the first minute the lines seen so far are the minute's.
        errors_per_minute=round(errors / max(minutes, 1.0), 1),
        longest_streak=longest,
    )


@dataclass(frozen=True)
class Verdict:
    reasons: list[str]  # each a short phrase: "availability 0 %, was 100 %"
    evidence: list[str]  # what failed where: "/healthz answers 500 on web1 and web2"

    def text(self) -> str:
        what = "; ".join(self.evidence) if self.evidence else ""
        why = "; ".join(self.reasons)
        return f"{what} ({why})" if what else why


def verdict(watch: Watch, cfg: WatchConfig) -> Verdict | None:
    """The reasons the deploy looks bad, or None while it is within every threshold."""
    f = figures(watch)
    base = watch.baseline
    reasons: list[str] = []
    if f.availability is not None and f.availability < cfg.availability:
        failed = f.probes - f.ok
        # A single failed probe is not enough: a streak on one URL, or several in all.
        if f.longest_streak >= cfg.failures or failed > cfg.failures:
            was = f", was {base.availability_text()}" if base else ""
            reasons.append(f"availability {f.availability:g} %{was}")
    if (
        base is not None
        and base.p95_ms is not None
        and f.p95_ms is not None
        and f.probes >= 5
        and f.p95_ms > cfg.p95_factor * base.p95_ms
        and f.p95_ms - base.p95_ms >= cfg.p95_min_ms
    ):
        reasons.append(f"p95 {f.p95_ms:.0f} ms, was {base.p95_ms:.0f} ms")
    if f.errors_per_minute > cfg.errors_per_minute:
        reasons.append(
            f"{f.error_lines} error line(s) in the logs, {f.errors_per_minute:g} a minute"
        )
    reasons += failing_metrics(watch, cfg)
    if not reasons:
        return None
    return Verdict(reasons=reasons, evidence=evidence(watch))


def failing_metrics(watch: Watch, cfg: WatchConfig) -> list[str]:
    """Each metric failed in the last `cfg.failures` ticks, as its latest reading says it:
    `checkout error rate 1 (before the bad deploy 0; max 0.01)`. Inconclusive is not bad news
    here: no data proposes nothing, and breaks the streak of failures."""
    recent = watch.ticks[-cfg.failures :]
    if len(recent) < cfg.failures:
        return []
    out: list[str] = []
    for latest in recent[-1].signals:
        readings = [s for t in recent for s in t.signals if s.name == latest.name]
        if len(readings) == len(recent) and all(s.verdict == "failed" for s in readings):
            out.append(latest.said)
    return out


def evidence(watch: Watch) -> list[str]:
    """The failures of the latest tick that had any, grouped: '/healthz answers 500 on web1'."""
    if not watch.ticks:
        return []
    failing = [t for t in watch.ticks if samples_failed(t.samples)]
    latest = failing[-1] if failing else watch.ticks[-1]
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in latest.samples:
        if s.ok:
            continue
        what = f"answers {s.status}" if s.status is not None else "does not answer"
        path = urlsplit(s.url).path or s.url
        if s.host:
            groups[(path, what)].append(s.host)
        else:
            groups[(s.url, what)]  # the same URL for every host: no host to name
    out = []
    for (path, what), hosts in groups.items():
        out.append(f"{path} {what} on {_and(sorted(set(hosts)))}" if hosts else f"{path} {what}")
    if not out:  # the probes pass: the logs are the evidence
        for host, n in sorted(watch.ticks[-1].errors.items()):
            if n:
                out.append(f"{n} error line(s) in the logs of {host}")
    return out


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def samples_failed(samples: list[Sample]) -> bool:
    return any(not s.ok for s in samples)


def tick_failed(tick: Tick) -> bool:
    """A failed probe or a failed signal (a metric, a host's resources): the watch's first
    sign of trouble. Inconclusive is no sign either way, as in `failing_metrics`."""
    return samples_failed(tick.samples) or any(s.verdict == "failed" for s in tick.signals)
