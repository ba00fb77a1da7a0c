"""Prometheus: an instant query through its HTTP API (`GET /api/v1/query`), vector or scalar.

Each series of a vector is judged; the worst is the headline. No series, NaN, an error or no
answer is inconclusive, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.checks.base import CheckEnv, QueryMetric, QueryProvider
from bot.checks.http import Answer, get_json
from bot.checks.result import CheckResult, from_series, inconclusive

NAN_REASON = "NaN: nothing to divide by (no requests in the window?)"
NO_SERIES = (
    "no data: the query returned no series (an error rate with no errors at all has none: "
    "write its numerator as `(sum(rate(…)) or vector(0))`)"
)


class PrometheusMetric(QueryMetric):
    provider: Literal["prometheus"]


def _labels(metric: object) -> str:
    if not isinstance(metric, dict) or not metric:
        return ""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _number(sample: object) -> tuple[float | None, str]:
    """`[time, "value"]` -> (value, why not judged)."""
    try:
        assert isinstance(sample, list)
        value = float(sample[1])
    except (AssertionError, IndexError, TypeError, ValueError):
        return None, f"not a sample: {str(sample)[:80]}"
    return (None, NAN_REASON) if math.isnan(value) else (value, "")


def series_of(body: object) -> list[tuple[str, float | None, str]] | str:
    """The (labels, value, reason) of each series in a successful answer, or why there are none."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return "Prometheus's answer has no `data`"
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return [("", *_number(result))]
    if kind != "vector" or not isinstance(result, list):
        return f"the query returned a {kind}, not a number or an instant vector"
    out: list[tuple[str, float | None, str]] = []
    for item in result:
        if isinstance(item, dict):
            out.append((_labels(item.get("metric")), *_number(item.get("value"))))
    return out


def refused(answer: Answer) -> str:
    """'' when the answer is a success, else why not, in plain words."""
    body = answer.body if isinstance(answer.body, dict) else {}
    if body.get("status") == "success" and answer.status == 200:
        return ""
    error = f"{body.get('errorType', '')}: {body.get('error', '')}".strip(": ")
    status = f"HTTP {answer.status}" + (f", {error}" if error else "")
    if not error and answer.text:
        status += f": {answer.text[:120]}"
    return f"Prometheus refused the query ({status})"


@dataclass(frozen=True)
class PrometheusCheck:
    metric: PrometheusMetric
    base_url: str
    query: str
    env: CheckEnv
    reads_the_past: bool = True

    @property
    def name(self) -> str:
        return self.metric.name

    async def measure(self, at: datetime | None = None) -> CheckResult:
        meta = {"provider": "prometheus", "unit": self.metric.unit}
        threshold = self.metric.threshold
        params = {"query": self.query}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        url = self.base_url.rstrip("/") + "/api/v1/query"
        answer = await get_json(url, who="Prometheus", timeout=self.env.timeout, params=params)
        found = answer.problem or refused(answer) or series_of(answer.body) or NO_SERIES
        if isinstance(found, str):
            return inconclusive(self.name, threshold, self.query, found, at=at, **meta)
        return from_series(self.name, threshold, self.query, found, at=at, **meta)


PROMETHEUS = QueryProvider("prometheus", PrometheusMetric, PrometheusCheck)
