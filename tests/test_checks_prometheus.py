"""The Prometheus provider against a real Prometheus scraping the sample app every second.

The bad version (v1.5.0) answers 500 on /healthz: its error rate fails the threshold, read
before its deploy it passed, and Prometheus stopped or a query with no series is inconclusive.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.checks import (
    Check,
    CheckEnv,
    CheckResult,
    Placeholders,
    Verdict,
    build_check,
    measure_with_before,
    parse_metrics,
)
from bot.sample.build import SampleRepo
from tests.prometheus_server import PROMETHEUS, PrometheusServer, SampleApp

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None and not Path(PROMETHEUS).exists(),
    reason="Debian's prometheus package is not installed (scripts/test.sh installs it)",
)

# `or vector(0)`: with no 5xx at all the numerator has no series, and no series is inconclusive.
ERROR_RATE = (
    '(sum(rate(http_requests_total{job="{app}",code=~"5.."}[5s])) or vector(0))'
    ' / sum(rate(http_requests_total{job="{app}"}[5s]))'
)


@pytest.fixture
async def lab(
    sample_repo: SampleRepo, tmp_path: Path
) -> AsyncIterator[tuple[SampleApp, PrometheusServer]]:
    app = SampleApp(sample_repo, tmp_path)
    app.deploy("v1.4.2")
    prom = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{app.port}"])
    try:
        await prom.start()
        yield app, prom
    finally:
        prom.stop()
        app.run_sh("stop")


def check(prom: PrometheusServer, query: str, **bounds: float) -> Check:
    entry = {"name": "checkout error rate", "provider": "prometheus", "url": prom.url,
             "query": query, **bounds}  # fmt: skip
    return build_check(parse_metrics([entry])[0], CheckEnv(timeout=5), Placeholders("myapp"))


async def until(read: Callable[[], Awaitable[CheckResult]], ok: Callable[[CheckResult], bool],
                wait: float = 60) -> CheckResult:  # fmt: skip
    """Read until `ok` (Prometheus needs a few scrapes for a rate); the last reading if never."""
    deadline = time.monotonic() + wait
    result = await read()
    while not ok(result) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        result = await read()
    return result


async def test_the_counter_is_scraped_and_a_query_reads_it(
    lab: tuple[SampleApp, PrometheusServer],
) -> None:
    app, prom = lab
    up = check(prom, 'sum(http_requests_total{job="{app}",handler="/healthz"})', min=1)
    async with app.traffic():
        result = await until(up.measure, lambda r: r.passed)
    assert result.verdict is Verdict.PASSED, result.describe()
    assert result.value is not None and result.value >= 1
    assert result.query == 'sum(http_requests_total{job="myapp",handler="/healthz"})'
    # The latency histogram is there too: p99 of /healthz under a second.
    buckets = 'rate(http_request_duration_seconds_bucket{job="{app}"}[5s])'
    p99 = check(prom, f"histogram_quantile(0.99, sum by (le) ({buckets}))", max=1)
    async with app.traffic():
        latency = await until(p99.measure, lambda r: r.verdict is not Verdict.INCONCLUSIVE)
    assert latency.passed and latency.value is not None and latency.value < 1, latency.describe()


async def test_the_bad_version_fails_the_error_rate_and_before_its_deploy_it_passed(
    lab: tuple[SampleApp, PrometheusServer],
) -> None:
    app, prom = lab
    rate = check(prom, ERROR_RATE, max=0.01)
    async with app.traffic():
        good = await until(rate.measure, lambda r: r.verdict is not Verdict.INCONCLUSIVE)
        assert good.verdict is Verdict.PASSED and good.value == 0, good.describe()
        deployed_at = datetime.now(UTC)
        app.deploy("v1.5.0")  # answers 500 on /healthz
        bad = await until(rate.measure, lambda r: r.value is not None and r.value > 0.5)
        assert bad.verdict is Verdict.FAILED, bad.describe()
        both = await measure_with_before(rate, deployed_at)
        assert both.verdict is Verdict.FAILED and both.before == 0
        assert "(before the bad deploy 0; max 0.01)" in both.describe(), both.describe()
        # Each code's rate is its own series; the 500s are the worst.
        by_code = check(prom, 'sum by (code) (rate(http_requests_total{job="{app}"}[5s]))', max=1)
        codes = await by_code.measure()
        assert any('code="500"' in s.labels for s in codes.series), codes
        app.deploy("v1.4.2")  # the good version back: the rate falls to 0 once 5 s have passed
        back = await until(rate.measure, lambda r: r.passed)
    assert back.verdict is Verdict.PASSED and back.value == 0, back.describe()


async def test_no_series_a_bad_query_and_a_stopped_prometheus_are_inconclusive(
    lab: tuple[SampleApp, PrometheusServer],
) -> None:
    app, prom = lab
    empty = await check(prom, 'http_requests_total{job="nobody"}', max=1).measure()
    assert empty.verdict is Verdict.INCONCLUSIVE and not empty.passed
    assert empty.reason.startswith("no data: the query returned no series (")
    assert "or vector(0)" in empty.reason  # what to do when it is an error rate with no errors
    broken = await check(prom, "sum(rate(", max=1).measure()
    assert broken.verdict is Verdict.INCONCLUSIVE
    assert broken.reason.startswith("Prometheus refused the query (HTTP 400, bad_data"), broken
    nan = await check(prom, "0/0", max=1).measure()  # e.g. an error ratio with no requests
    assert nan.verdict is Verdict.INCONCLUSIVE and "NaN" in nan.reason
    rate = check(prom, ERROR_RATE, max=0.01)
    async with app.traffic():
        assert (await until(rate.measure, lambda r: r.passed)).passed
        prom.stop()
        stopped = await rate.measure()
    assert stopped.verdict is Verdict.INCONCLUSIVE and not stopped.passed
    assert stopped.reason == f"Prometheus at {prom.url} could not be reached (connection refused)"
    assert stopped.summary().startswith("inconclusive: checkout error rate no value (max 0.01)")
