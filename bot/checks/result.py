"""What a check found: a verdict, the value, the threshold it was judged by, and why.

Inconclusive (no data, no answer, an error) is its own verdict and never a pass: whoever reads a
result asks `passed`, which is True for a pass only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


def format_value(value: float, unit: str = "") -> str:
    """A number as people read it: 0.002, 0.2, 12.5, 1,234; with its unit, e.g. `0.2 %`."""
    if math.isnan(value):
        text = "NaN"
    elif math.isinf(value):
        text = "infinite" if value > 0 else "minus infinite"
    elif value != 0 and abs(value) < 0.001:
        text = f"{value:.2e}"
    elif abs(value) >= 1000:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}" if unit else text


@dataclass(frozen=True)
class Threshold:
    """The bounds a value must stay within; at least one is set (the config models see to it)."""

    min: float | None = None
    max: float | None = None

    def judge(self, value: float | None) -> Verdict:
        if value is None or math.isnan(value):
            return Verdict.INCONCLUSIVE
        if self.max is not None and value > self.max:
            return Verdict.FAILED
        if self.min is not None and value < self.min:
            return Verdict.FAILED
        if self.max is None and self.min is None:
            return Verdict.INCONCLUSIVE  # nothing to judge by is not a pass
        return Verdict.PASSED

    def badness(self, value: float) -> float:
        """How far beyond (positive) or within (negative) the bounds `value` is."""
        over = value - self.max if self.max is not None else -math.inf
        under = self.min - value if self.min is not None else -math.inf
        return max(over, under)

    def describe(self, unit: str = "") -> str:
        parts = []
        if self.min is not None:
            parts.append(f"min {format_value(self.min, unit)}")
        if self.max is not None:
            parts.append(f"max {format_value(self.max, unit)}")
        return ", ".join(parts) or "no threshold"


@dataclass(frozen=True)
class SeriesResult:
    """One series of a multi-series answer (e.g. one per instance), judged on its own."""

    labels: str  # e.g. `instance="web1:8000", code="500"`, or a Datadog scope `host:web1`
    value: float | None
    verdict: Verdict
    threshold: Threshold
    reason: str = ""  # why inconclusive, e.g. "NaN (0/0: no requests in the window?)"


_RANK = {Verdict.FAILED: 2, Verdict.INCONCLUSIVE: 1, Verdict.PASSED: 0}


def worst(series: Sequence[SeriesResult]) -> SeriesResult:
    """The series to show first: a failure over an unknown over a pass; the furthest out."""

    def key(s: SeriesResult) -> tuple[int, float]:
        far = s.threshold.badness(s.value) if s.value is not None else 0.0
        return (_RANK[s.verdict], 0.0 if math.isnan(far) else far)

    return max(series, key=key)


@dataclass(frozen=True)
class CheckResult:
    """One reading of one check. `value`/`threshold` are the headline (the worst series)."""

    name: str
    verdict: Verdict
    value: float | None
    threshold: Threshold
    query: str  # what was asked, as sent (placeholders filled); never holds a secret
    provider: str = ""
    unit: str = ""
    before: float | None = None  # the same query before the bad deploy, when known
    series: tuple[SeriesResult, ...] = ()
    reason: str = ""  # in plain words: why inconclusive, or which series is the headline
    note: str = ""  # more to show, not judged (e.g. the service's own CPU and memory)
    at: datetime | None = None  # the time read (None: now)
    host: str | None = None  # the host it was read for, when it is one host's
    status: int | None = None  # the answer's code: an HTTP status, a command's exit status
    lines: tuple[str, ...] = ()  # what it found, to show: e.g. the log lines that matched
    checked: int | None = None  # how many items it looked at, when it counts them (log lines)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    def describe(self) -> str:
        """e.g. `checkout error rate 0.2 % (before the bad deploy 0.1 %; max 1 %)`."""
        shown = "no value" if self.value is None else format_value(self.value, self.unit)
        context = [self.threshold.describe(self.unit)]
        if self.before is not None:
            context.insert(0, f"before the bad deploy {format_value(self.before, self.unit)}")
        text = f"{self.name} {shown} ({'; '.join(context)})"
        if self.reason:
            text += f": {self.reason}"
        return text + (f". {self.note}" if self.note else "")

    def summary(self) -> str:
        """The verdict first, for a list of checks: `failed: checkout error rate 2 % (max 1 %)`."""
        return f"{self.verdict.value}: {self.describe()}"

    def with_before(self, before: CheckResult) -> CheckResult:
        """This reading, with the headline value of the reading `before` the bad deploy."""
        return replace(self, before=before.value)


def from_series(
    name: str,
    threshold: Threshold,
    query: str,
    values: Sequence[tuple[str, float | None, str]],
    *,
    provider: str = "",
    unit: str = "",
    at: datetime | None = None,
) -> CheckResult:
    """Judge each (labels, value, reason) and headline the worst; none at all is inconclusive."""
    if not values:
        why = "no data: the query returned no series"
        return inconclusive(name, threshold, query, why, provider=provider, unit=unit, at=at)
    series = tuple(
        SeriesResult(labels, value, threshold.judge(value), threshold, reason)
        for labels, value, reason in values
    )
    head = worst(series)
    reason = head.reason
    if len(series) > 1 and head.verdict is not Verdict.PASSED:
        reason = f"worst of {len(series)} series: {head.labels}" + (f", {reason}" if reason else "")
    return CheckResult(name, head.verdict, head.value, threshold, query, provider, unit,
                       series=series, reason=reason, at=at)  # fmt: skip


def inconclusive(
    name: str,
    threshold: Threshold,
    query: str,
    reason: str,
    *,
    provider: str = "",
    unit: str = "",
    at: datetime | None = None,
) -> CheckResult:
    return CheckResult(name, Verdict.INCONCLUSIVE, None, threshold, query, provider, unit,
                       reason=reason, at=at)  # fmt: skip


__all__ = [
    "CheckResult",
    "SeriesResult",
    "Threshold",
    "Verdict",
    "format_value",
    "from_series",
    "inconclusive",
    "worst",
]
