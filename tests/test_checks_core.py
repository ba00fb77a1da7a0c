"""bot.checks without a provider: results and their words, thresholds, config, placeholders."""

from __future__ import annotations

import math
import re

import pytest
from pydantic import ValidationError

from bot.checks import (
    CheckEnv,
    CheckResult,
    Placeholders,
    Threshold,
    Verdict,
    build_check,
    metrics_problems,
    parse_metrics,
)
from bot.checks.placeholders import NAME_RE, VERSION_RE, fields, render_query, render_url
from bot.checks.result import from_series
from bot.config.apps_file import _ID
from bot.workflow.version import SHAPE as ROLLBACK_VERSION_RE


def prom(**over: object) -> dict[str, object]:
    return {"name": "checkout error rate", "provider": "prometheus",
            "url": "http://prom:9090", "query": 'up{job="{app}"}', "max": 1, **over}  # fmt: skip


def test_the_result_reads_as_the_issue_says() -> None:
    r = CheckResult("checkout error rate", Verdict.PASSED, 0.2, Threshold(max=1), "q",
                    unit="%", before=0.1)  # fmt: skip
    assert r.describe() == "checkout error rate 0.2 % (before the bad deploy 0.1 %; max 1 %)"
    assert r.summary().startswith("passed: ") and r.passed
    two = CheckResult("p99 latency", Verdict.FAILED, 2.5, Threshold(min=0, max=1), "q", unit="s")
    assert two.describe() == "p99 latency 2.5 s (min 0 s, max 1 s)" and not two.passed


def test_inconclusive_is_never_a_pass() -> None:
    assert Threshold(max=1).judge(None) is Verdict.INCONCLUSIVE
    assert Threshold(max=1).judge(math.nan) is Verdict.INCONCLUSIVE
    assert Threshold().judge(0.0) is Verdict.INCONCLUSIVE  # nothing to judge by
    empty = from_series("rate", Threshold(max=1), "q", [])
    assert empty.verdict is Verdict.INCONCLUSIVE and not empty.passed
    assert "no data" in empty.reason and "no value" in empty.describe()


def test_each_series_is_judged_and_the_worst_is_the_headline() -> None:
    values = [('{instance="a"}', 0.1, ""), ('{instance="b"}', 5.0, ""), ('{instance="c"}', 2.0, "")]
    r = from_series("rate", Threshold(max=1), "q", values)
    assert r.verdict is Verdict.FAILED and r.value == 5.0
    assert [s.verdict for s in r.series] == [Verdict.PASSED, Verdict.FAILED, Verdict.FAILED]
    assert 'instance="b"' in r.reason and "worst of 3" in r.reason
    # An unknown series among passing ones makes the whole inconclusive, not a pass.
    mixed = from_series("rate", Threshold(max=1), "q", [("a", 0.1, ""), ("b", None, "NaN")])
    assert mixed.verdict is Verdict.INCONCLUSIVE and "NaN" in mixed.reason
    # Below a minimum, the lowest is the worst.
    low = from_series("rps", Threshold(min=10), "q", [("a", 9.0, ""), ("b", 1.0, "")])
    assert low.verdict is Verdict.FAILED and low.value == 1.0


def test_metric_entries_are_checked_when_the_apps_file_is_read() -> None:
    assert parse_metrics([prom()])[0].threshold == Threshold(max=1)
    web = {"name": "errors", "provider": "web", "url": "http://x/{host}", "path": "data.rate",
           "min": 0}  # fmt: skip
    assert parse_metrics([web])[0].provider == "web"
    bad = [
        (prom(max=None), "give `max` and/or `min`"),
        (prom(min=2, max=1), "is above `max`"),
        (prom(typo=1), "Extra inputs are not permitted"),
        (prom(provider="graphite"), "does not match any of the expected tags"),
        (prom(url="ftp://prom"), "http(s) URL"),
        (prom(query="up{job='{service}'}"), "unknown placeholder {service}"),
        (prom(url="http://{who}:9090"), "unknown placeholder {who}"),
        ({**web, "path": "data..rate"}, "is not a path"),
        ({k: v for k, v in prom().items() if k != "query"}, "query"),
    ]
    for entry, message in bad:
        with pytest.raises(ValidationError) as err:
            parse_metrics([entry])
        assert message in str(err.value), (entry, str(err.value))
    twice = parse_metrics([prom(), prom(name="Checkout error rate")])
    assert metrics_problems(twice) == [
        "metrics[1]: a second metric named 'Checkout error rate': give each its own"
    ]


def test_query_braces_are_not_placeholders_and_doubled_braces_are_literal() -> None:
    q = 'sum(rate(x{job="{app}",code=~"5[0-9]{2}"}[1m])) + avg:y{{production}}{host:{host}}'
    assert fields(q) == {"app", "host"}
    out = render_query(q, Placeholders("myapp", host="web1"))
    assert out == 'sum(rate(x{job="myapp",code=~"5[0-9]{2}"}[1m])) + avg:y{production}{host:web1}'


HOSTILE = ['v1"} or vector(0) #', "v1\\", "a b", "x{y}", "v1;rm -rf /", "", "v1\n", "é"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_refused_in_queries_and_urls(value: str) -> None:
    with pytest.raises(ValueError, match="not a valid version"):
        render_query('x{version="{version}"}', Placeholders("myapp", version=value))
    with pytest.raises(ValueError, match="not a valid host"):
        render_url("http://prom/{host}", Placeholders("myapp", host=value))


async def test_a_refused_value_gives_an_inconclusive_check_never_an_exception() -> None:
    metric = parse_metrics([prom(query='x{version="{version}"}')])[0]
    check = build_check(metric, CheckEnv(), Placeholders("myapp", version='v1"} or vector(0)'))
    r = await check.measure()
    assert r.verdict is Verdict.INCONCLUSIVE and "not a valid version" in r.reason
    missing = build_check(metric, CheckEnv(), Placeholders("myapp"))  # no version known
    assert "no value here" in (await missing.measure()).reason


def test_values_are_percent_quoted_in_urls() -> None:
    url = render_url("http://web/{app}/stats?v={version}", Placeholders("my.app", version="r/1"))
    assert url == "http://web/my.app/stats?v=r%2F1"


def test_the_placeholder_rules_are_the_apps_files_and_the_rollback_commands() -> None:
    # bot.checks may not import those modules (the apps file will import bot.checks).
    assert NAME_RE.pattern == _ID.pattern
    assert VERSION_RE.pattern == ROLLBACK_VERSION_RE.pattern
    assert re.compile(NAME_RE.pattern).match("web-1.eu_2")


def test_bot_checks_imports_no_slack_redis_ssh_or_apps_file() -> None:
    import subprocess
    import sys

    code = (
        "import sys, bot.checks; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('slack_bolt', 'slack_sdk', 'redis', 'asyncssh') or m == 'bot.config.apps_file']; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
