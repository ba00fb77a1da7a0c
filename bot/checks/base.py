"""What every check provides, what a provider builds checks from, and the before/after read."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.checks.placeholders import (
    Placeholders,
    check_template,
    check_url,
    render_query,
    render_url,
)
from bot.checks.result import CheckResult, Threshold


class Check(Protocol):
    """One signal, read and judged: a metric query, a host's resource usage…"""

    @property
    def name(self) -> str:
        """As shown in the thread and the report, e.g. `checkout error rate`."""
        ...

    @property
    def query(self) -> str:
        """What it reads, as sent (the plan lists it); never holds a secret."""
        ...

    @property
    def reads_the_past(self) -> bool:
        """`measure(at=…)` with a past time reads that time's value (Prometheus, Datadog)."""
        ...

    async def measure(self, at: datetime | None = None) -> CheckResult:
        """Read and judge the value now, or at `at`. Never raises for a provider's failure:
        no answer, no data or an error is an inconclusive result that says why."""
        ...


@dataclass(frozen=True)
class CheckEnv:
    """What checks need from the settings: the HTTP timeout and the providers' keys."""

    timeout: float = 10.0
    dd_api_key: SecretStr | None = None
    dd_app_key: SecretStr | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], timeout: float = 10.0) -> CheckEnv:
        def secret(name: str) -> SecretStr | None:
            value = environ.get(name, "").strip()
            return SecretStr(value) if value else None

        return cls(timeout, secret("DD_API_KEY"), secret("DD_APP_KEY"))


class MetricBase(BaseModel):
    """What every `metrics:` entry has; each provider's model adds its own keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")
    provider: str  # each provider's model narrows it to its own name
    url: str
    max: float | None = None
    min: float | None = None
    unit: str = Field(default="", max_length=12, pattern=r"^[^\x00-\x1f\x7f]*$")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v)

    @model_validator(mode="after")
    def _bounds(self) -> MetricBase:
        if self.max is None and self.min is None:
            raise ValueError("give `max` and/or `min`: a metric with no threshold judges nothing")
        for bound in (self.max, self.min):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("`max` and `min` must be finite numbers")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"`min` ({self.min}) is above `max` ({self.max})")
        return self

    @property
    def threshold(self) -> Threshold:
        return Threshold(min=self.min, max=self.max)


class Ran(Protocol):
    @property
    def exit_status(self) -> int | None: ...
    @property
    def output(self) -> str: ...


class Runs(Protocol):
    """What this needs of `bot.ports.HostRunner` (the SSH runner, or the local one)."""

    async def run(self, host: str, command: str, *, timeout: float | None = None) -> Ran: ...


class Provider(Protocol):
    """A metric provider: its name (the `provider:` key), its config model, its checks."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> type[MetricBase]: ...

    def build(self, metric: MetricBase, env: CheckEnv, values: Placeholders) -> Check:
        """The check of `metric` for these placeholder values. Raises ValueError when a value
        is refused (see `bot.checks.placeholders`)."""
        ...


async def measure_with_before(check: Check, deploy_at: datetime | None) -> CheckResult:
    """Read `check` now and, when the bad deploy's time is known and the provider can read the
    past, at that time too: the result carries both."""
    now = await check.measure()
    if deploy_at is None or not check.reads_the_past:
        return now
    return now.with_before(await check.measure(deploy_at))


class QueryMetric(MetricBase):
    """A metric read with a query sent to its provider's URL (Prometheus, Datadog)."""

    query: str = Field(min_length=1, max_length=4000)

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        return check_template(v)


Q = TypeVar("Q", bound=QueryMetric)


@dataclass(frozen=True)
class QueryProvider(Generic[Q]):
    """A provider of `QueryMetric`s: the URL and the query filled in, then its own check."""

    name: str
    config: type[Q]
    check: Callable[[Q, str, str, CheckEnv], Check]

    def build(self, metric: MetricBase, env: CheckEnv, values: Placeholders) -> Check:
        assert isinstance(metric, self.config)
        url, query = render_url(metric.url, values), render_query(metric.query, values)
        return self.check(metric, url, query, env)
