"""The Datadog and web providers against local stand-ins that speak their APIs and check keys."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from bot.checks import CheckEnv, CheckResult, Placeholders, Verdict, build_check, parse_metrics
from bot.checks.datadog import WINDOW
from tests.metric_standins import API_KEY, APP_KEY, DatadogStandIn, JsonStandIn

KEYS = CheckEnv.from_environ({"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY}, timeout=5)
QUERY = "avg:trace.http.request.errors{service:{app}}"


@pytest.fixture
async def datadog() -> AsyncIterator[DatadogStandIn]:
    dd = DatadogStandIn()
    await dd.start()
    yield dd
    await dd.stop()


@pytest.fixture
async def web() -> AsyncIterator[JsonStandIn]:
    stand_in = JsonStandIn()
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


async def read_dd(dd: DatadogStandIn, env: CheckEnv, query: str = QUERY,
                  at: datetime | None = None) -> CheckResult:  # fmt: skip
    entry = {"name": "checkout errors", "provider": "datadog", "url": dd.url, "query": query,
             "max": 5}  # fmt: skip
    return await build_check(parse_metrics([entry])[0], env, Placeholders("myapp")).measure(at)


def text_of(result: CheckResult) -> str:
    return f"{result!r} {result.describe()} {result.summary()}"


async def test_datadog_last_point_of_each_series_is_judged(
    datadog: DatadogStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    query = "avg:trace.http.request.errors{service:myapp}"
    datadog.series[query] = [
        {"scope": "host:web1", "pointlist": [[1, 9.0], [2, 1.0], [3, None]]},  # last: 1
        {"scope": "host:web2", "pointlist": [[1, 2.0], [2, 7.5]]},
    ]
    failed = await read_dd(datadog, KEYS)
    assert failed.verdict is Verdict.FAILED and failed.value == 7.5, failed.describe()
    assert [(s.labels, s.value) for s in failed.series] == [("host:web1", 1.0), ("host:web2", 7.5)]
    assert failed.query == query and "host:web2" in failed.reason
    seen = datadog.seen[-1]
    assert seen.query["query"] == query
    assert int(seen.query["to"]) - int(seen.query["from"]) == WINDOW
    datadog.series[query] = [{"scope": "host:web1", "pointlist": [[1, 0.5]]}]
    assert (await read_dd(datadog, KEYS)).verdict is Verdict.PASSED
    # A past time asks for the window that ends then (the value before the bad deploy).
    before = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await read_dd(datadog, KEYS, at=before)
    assert datadog.seen[-1].query["to"] == str(int(before.timestamp()))
    for r in (failed,):
        assert API_KEY not in text_of(r) and APP_KEY not in text_of(r)
    assert API_KEY not in caplog.text and APP_KEY not in caplog.text
    assert API_KEY not in repr(KEYS) and APP_KEY not in str(KEYS)


async def test_datadog_wrong_or_missing_keys_are_inconclusive_and_never_shown(
    datadog: DatadogStandIn,
) -> None:
    wrong = CheckEnv(5, SecretStr("dd-api-wrong-secret"), SecretStr("dd-app-wrong-secret"))
    refused = await read_dd(datadog, wrong)
    assert refused.verdict is Verdict.INCONCLUSIVE and not refused.passed
    assert refused.reason == "Datadog refused the keys (HTTP 403): check DD_API_KEY and DD_APP_KEY"
    assert "wrong-secret" not in text_of(refused)
    missing = await read_dd(datadog, CheckEnv.from_environ({"DD_API_KEY": API_KEY}))
    assert missing.verdict is Verdict.INCONCLUSIVE
    assert missing.reason.startswith("DD_APP_KEY not set")
    assert API_KEY not in text_of(missing)
    asked = len(datadog.seen)
    none = await read_dd(datadog, CheckEnv.from_environ({}))
    assert none.reason.startswith("DD_API_KEY and DD_APP_KEY not set")
    assert len(datadog.seen) == asked  # nothing sent without keys


async def test_datadog_no_series_a_bad_query_and_no_answer_are_inconclusive(
    datadog: DatadogStandIn,
) -> None:
    empty = await read_dd(datadog, KEYS, query="avg:nothing{*}")
    assert empty.verdict is Verdict.INCONCLUSIVE and "no data" in empty.reason
    datadog.series["avg:gaps{*}"] = [{"scope": "*", "pointlist": [[1, None]]}]
    gaps = await read_dd(datadog, KEYS, query="avg:gaps{*}")
    assert gaps.verdict is Verdict.INCONCLUSIVE and "no point in the last 5 minutes" in gaps.reason
    bad = await read_dd(datadog, KEYS, query="bad query")
    assert bad.reason == "Datadog refused the query (HTTP 400): Rule 'scope_expr' didn't match"
    url = datadog.url
    await datadog.stop()
    gone = await read_dd(datadog, KEYS)
    assert gone.reason == f"Datadog at {url} could not be reached (connection refused)"


async def read_web(stand_in: JsonStandIn, path: str, url_path: str = "/stats",
                   at: datetime | None = None, **bounds: float) -> CheckResult:  # fmt: skip
    entry = {"name": "error rate", "provider": "web", "url": stand_in.url + url_path,
             "path": path, **(bounds or {"max": 0.01})}  # fmt: skip
    return await build_check(parse_metrics([entry])[0], KEYS, Placeholders("myapp")).measure(at)


async def test_web_reads_the_number_at_the_path(web: JsonStandIn) -> None:
    web.answers["/stats"] = (200, json.dumps({"data": {"error_rate": 0.002,
                                                       "shards": [{"rate": "0.5"}]}}))  # fmt: skip
    ok = await read_web(web, "data.error_rate")
    assert ok.verdict is Verdict.PASSED and ok.value == 0.002
    assert ok.query == f"{web.url}/stats → data.error_rate"
    high = await read_web(web, "$.data.shards[0].rate")
    assert high.verdict is Verdict.FAILED and high.value == 0.5
    low = await read_web(web, "data.error_rate", min=0.1)
    assert low.verdict is Verdict.FAILED


async def test_web_anything_but_a_number_is_inconclusive(web: JsonStandIn) -> None:
    web.answers["/stats"] = (200, json.dumps({"data": {"error_rate": "n/a", "ok": True,
                                                       "nan": "NaN"}}))  # fmt: skip
    web.answers["/down"] = (503, '{"error": "maintenance"}')
    web.answers["/html"] = (200, "<html>hi</html>")
    cases = [
        (await read_web(web, "data.missing"), "the answer has nothing at data.missing"),
        (await read_web(web, "data.error_rate"), "holds 'n/a', not a number"),
        (await read_web(web, "data.ok"), "holds 'True', not a number"),
        (await read_web(web, "data.nan"), "holds NaN"),
        (await read_web(web, "data[0]"), "the answer has nothing at data[0]"),
        (await read_web(web, "x", "/down"), "answered HTTP 503"),
        (await read_web(web, "x", "/html"), "did not answer JSON"),
        (await read_web(web, "x", at=datetime.now(UTC) - timedelta(minutes=5)), "read now only"),
    ]
    for result, words in cases:
        assert result.verdict is Verdict.INCONCLUSIVE and not result.passed, result
        assert words in result.reason, (words, result.reason)


async def test_web_no_answer_in_time_or_no_such_host_is_inconclusive(web: JsonStandIn) -> None:
    slow = await read_web(web, "x", "/slow")  # the checks' timeout here is 5 s
    assert slow.reason == f"the metric URL at {web.url} did not answer within 5 s"
    entry = {"name": "e", "provider": "web", "url": "http://no-such-host.invalid/x", "path": "x",
             "max": 1}  # fmt: skip
    check = build_check(parse_metrics([entry])[0], KEYS, Placeholders("myapp"))
    gone = await check.measure()
    assert gone.verdict is Verdict.INCONCLUSIVE
    assert gone.reason.startswith("the metric URL at http://no-such-host.invalid could not be "
                                  "reached ("), gone.reason  # fmt: skip
