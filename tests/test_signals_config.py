"""`metrics:` and `resources:` in the apps file: read like every other key, and every problem
listed by `python -m bot check` with its key and line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import yaml

from tests.fixtures_hosts import SshEnv
from tests.metric_standins import API_KEY, APP_KEY, DatadogStandIn, JsonStandIn
from tests.slack_fake import SlackFake
from tests.test_check_problems import ROOT, check, good, line_of

SIGNALS = """\
    metrics:
      - name: checkout error rate
        provider: prometheus
        url: http://prometheus:9090
        query: 'sum(rate(http_requests_total{{job="{{app}}",code=~"5.."}}[1m]))'
        max: 0.01
      - {{name: queue depth, provider: web, url: "https://status.example/stats", path: data.depth,
         min: 0, max: 1000}}
      - {{name: latency, provider: web, url: "https://status.example/stats", path: p99, max: 1}}
    resources: {{cpu: 90, memory: 90, disk: 95}}
"""


def test_metrics_and_resources_are_read(tmp_path: Path) -> None:
    result = check(tmp_path, good(tmp_path) + SIGNALS.format())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ all well" in result.stdout


def test_each_problem_of_the_signals_is_listed_with_its_line(tmp_path: Path) -> None:
    text = good(tmp_path) + SIGNALS.format()
    text = text.replace("name: queue depth", "name: Checkout Error Rate")  # two of one name
    text = text.replace('stats", path: p99, max:', '{service}", path: p99, maximum:')
    text = text.replace("disk: 95", "disk: 150")
    result = check(tmp_path, text)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    name_line = line_of(text, "name: Checkout Error Rate")
    assert (
        f"apps.yaml:{name_line}: apps.myapp.metrics[1]: a second metric named "
        "'Checkout Error Rate': give each its own"
    ) in out
    assert f"apps.yaml:{line_of(text, 'disk: 150')}: apps.myapp.resources.disk:" in out
    assert "unknown key `maximum`" in out
    assert "unknown placeholder {service}: use {app}, {host} or {version}" in out
    assert "✓ all well" not in out


async def test_check_connect_runs_each_query_once_and_shows_its_value(
    ssh_env: SshEnv, slack: SlackFake, redis_url: str, tmp_path: Path
) -> None:
    datadog, web = DatadogStandIn(), JsonStandIn()
    await datadog.start()
    await web.start()
    datadog.series["p99:checkout.latency{service:myapp}"] = [
        {"scope": "host:web1", "pointlist": [[1, 0.2], [2, 0.3]]}
    ]
    web.answers["/stats"] = (200, json.dumps({"data": {"queue": 1500}}))
    cfg = ssh_env.app_config()
    cfg["metrics"] = [
        {"name": "p99 latency", "provider": "datadog", "url": datadog.url,
         "query": "p99:checkout.latency{service:{app}}", "max": 0.5, "unit": "s"},
        {"name": "queue depth", "provider": "web", "url": f"{web.url}/stats",
         "path": "data.queue", "max": 1000},
        {"name": "version errors", "provider": "web", "url": f"{web.url}/v/{{version}}",
         "path": "errors", "max": 1},
        {"name": "gone", "provider": "web", "url": f"{web.url}/nothing", "path": "x", "max": 1},
    ]  # fmt: skip
    path = tmp_path / "apps.yaml"
    path.write_text(yaml.safe_dump({"apps": {"myapp": cfg}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_", "DD_"))}
    env |= {"REWIND_CONFIG": str(path), "REDIS_URL": redis_url, "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_API_URL": slack.api_url, "DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY,
            "PYTHONPATH": str(ROOT)}  # fmt: skip
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "check", "--connect", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        said = (await asyncio.wait_for(proc.communicate(), 120))[0].decode()
    finally:
        await datadog.stop()
        await web.stop()
    assert proc.returncode == 1, said
    assert "✅ passed: p99 latency 0.3 s (max 0.5 s) — p99:checkout.latency{service:myapp}" in said
    assert "❌ failed: queue depth 1,500 (max 1,000)" in said  # shown; the config is sound
    assert "– myapp: version errors: uses {version}, read during a rollback only" in said
    problems = said.split("problem(s):", 1)[1]
    assert "myapp: metric inconclusive: gone no value (max 1)" in problems
    assert "queue depth" not in problems and "p99" not in problems
    assert [s.path for s in datadog.seen] == ["/api/v1/query"]  # once
    assert API_KEY not in said and APP_KEY not in said
