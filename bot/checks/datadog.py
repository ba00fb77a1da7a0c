"""Datadog: the metrics query API (`GET /api/v1/query`), the last point of each series.

The keys come from `DD_API_KEY` and `DD_APP_KEY` (as `SecretStr` in `CheckEnv`) and go only
into the request's headers: never into a result, a message, a repr or a log line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.checks.base import CheckEnv, QueryMetric, QueryProvider
from bot.checks.http import Answer, get_json
from bot.checks.result import CheckResult, from_series, inconclusive

WINDOW = 300  # seconds of points asked for; the last one in it is the value


class DatadogMetric(QueryMetric):
    provider: Literal["datadog"]


def _last_point(pointlist: object) -> float | None:
    if not isinstance(pointlist, list):
        return None
    for point in reversed(pointlist):
        if isinstance(point, list) and len(point) == 2 and isinstance(point[1], int | float):
            return float(point[1])
    return None


def series_of(body: object) -> list[tuple[str, float | None, str]] | str:
    if not isinstance(body, dict) or not isinstance(body.get("series"), list):
        return "Datadog's answer has no `series`"
    out: list[tuple[str, float | None, str]] = []
    for item in body["series"]:
        if isinstance(item, dict):
            value = _last_point(item.get("pointlist"))
            why = "" if value is not None else f"no point in the last {WINDOW // 60} minutes"
            out.append((str(item.get("scope") or item.get("expression") or ""), value, why))
    return out


def refused(answer: Answer) -> str:
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status in (401, 403):
        return f"Datadog refused the keys (HTTP {answer.status}): check DD_API_KEY and DD_APP_KEY"
    errors = body.get("errors") or body.get("error") or ""
    if answer.status == 200 and body.get("status") != "error":
        return ""
    detail = "; ".join(map(str, errors)) if isinstance(errors, list) else str(errors)
    return f"Datadog refused the query (HTTP {answer.status}): {detail[:200] or answer.text[:120]}"


def missing_keys(env: CheckEnv) -> str:
    missing = [n for n, k in (("DD_API_KEY", env.dd_api_key), ("DD_APP_KEY", env.dd_app_key))
               if k is None]  # fmt: skip
    if not missing:
        return ""
    return f"{' and '.join(missing)} not set: Rewind reads Datadog with the keys in its environment"


@dataclass(frozen=True)
class DatadogCheck:
    metric: DatadogMetric
    base_url: str
    query: str
    env: CheckEnv
    reads_the_past: bool = True

    @property
    def name(self) -> str:
        return self.metric.name

    async def measure(self, at: datetime | None = None) -> CheckResult:
        meta = {"provider": "datadog", "unit": self.metric.unit}
        threshold = self.metric.threshold
        why = missing_keys(self.env)
        if why or self.env.dd_api_key is None or self.env.dd_app_key is None:
            return inconclusive(self.name, threshold, self.query, why, at=at, **meta)
        to = int(at.timestamp() if at is not None else time.time())
        params = {"from": str(to - WINDOW), "to": str(to), "query": self.query}
        headers = {
            "DD-API-KEY": self.env.dd_api_key.get_secret_value(),
            "DD-APPLICATION-KEY": self.env.dd_app_key.get_secret_value(),
        }
        url = self.base_url.rstrip("/") + "/api/v1/query"
        answer = await get_json(
            url, who="Datadog", timeout=self.env.timeout, params=params, headers=headers
        )
        found = answer.problem or refused(answer) or series_of(answer.body)
        if isinstance(found, str):
            return inconclusive(self.name, threshold, self.query, found, at=at, **meta)
        return from_series(self.name, threshold, self.query, found, at=at, **meta)


DATADOG = QueryProvider("datadog", DatadogMetric, DatadogCheck)
