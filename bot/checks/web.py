"""Web: any URL that answers JSON, with a `path` to the number (as Argo's web provider does).

`path` is dotted keys and `[n]` indexes, e.g. `data.error_rate` or `checks[0].value`. A web
metric is read now only: it has no value for a past time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from bot.checks.base import Check, CheckEnv, MetricBase
from bot.checks.http import get_json
from bot.checks.placeholders import Placeholders, render_url
from bot.checks.result import CheckResult, from_series, inconclusive

_STEP = re.compile(r"\.?([A-Za-z0-9_-]+)|\[(\d+)\]")


def steps(path: str) -> list[str | int]:
    """`data.items[0].value` -> ['data', 'items', 0, 'value']; ValueError when not a path."""
    text = path.removeprefix("$").removeprefix(".") if path.startswith("$") else path
    out: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None or (m.group(0).startswith(".") and pos == 0):
            raise ValueError(
                f"{path!r} is not a path: use dotted keys and [n] indexes, e.g. data.error_rate"
            )
        out.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not out:
        raise ValueError("`path` is empty: give the path to the number, e.g. data.error_rate")
    return out


def pick(body: object, path: str) -> float | str:
    """The number at `path` in `body` (NaN included), or why there is none."""
    here = body
    walked = steps(path)
    for i, step in enumerate(walked):
        if isinstance(step, int) and isinstance(here, list) and step < len(here):  # noqa: SIM114 - two types
            here = here[step]
        elif isinstance(step, str) and isinstance(here, dict) and step in here:
            here = here[step]
        else:
            return f"the answer has nothing at {_join(walked[: i + 1])}"
    if isinstance(here, bool) or not isinstance(here, int | float | str):
        return f"at {path} the answer holds {str(here)[:60]!r}, not a number"
    try:
        return float(here)
    except ValueError:
        return f"at {path} the answer holds {str(here)[:60]!r}, not a number"


def _join(parts: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


class WebMetric(MetricBase):
    provider: Literal["web"]
    path: str = Field(min_length=1, max_length=400)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        steps(v)
        return v


@dataclass(frozen=True)
class WebCheck:
    metric: WebMetric
    url: str
    env: CheckEnv
    reads_the_past: bool = False

    @property
    def name(self) -> str:
        return self.metric.name

    @property
    def query(self) -> str:
        return f"{self.url} → {self.metric.path}"

    async def measure(self, at: datetime | None = None) -> CheckResult:
        meta = {"provider": "web", "unit": self.metric.unit}
        threshold = self.metric.threshold
        if at is not None:
            why = "a web metric is read now only: it has no value for a past time"
            return inconclusive(self.name, threshold, self.query, why, at=at, **meta)
        answer = await get_json(self.url, who="the metric URL", timeout=self.env.timeout)
        found: float | str = answer.problem
        if not found and answer.status != 200:
            found = f"the metric URL answered HTTP {answer.status}: {answer.text[:120]}"
        elif not found and answer.body is None:
            found = f"the metric URL did not answer JSON: {answer.text[:120]!r}"
        if not found:
            found = pick(answer.body, self.metric.path)
        if isinstance(found, float) and math.isnan(found):
            found = f"at {self.metric.path} the answer holds NaN"
        if isinstance(found, str):
            return inconclusive(self.name, threshold, self.query, found, at=None, **meta)
        return from_series(self.name, threshold, self.query, [("", found, "")], at=None, **meta)


@dataclass(frozen=True)
class _Web:
    name: str = "web"
    config: type[MetricBase] = WebMetric

    def build(self, metric: MetricBase, env: CheckEnv, values: Placeholders) -> Check:
        assert isinstance(metric, WebMetric)
        return WebCheck(metric, render_url(metric.url, values), env)


WEB = _Web()
