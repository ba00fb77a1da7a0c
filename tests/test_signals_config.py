"""`metrics:` and `resources:` in the apps file: read like every other key, and every problem
listed by `python -m bot check` with its key and line."""

from __future__ import annotations

from pathlib import Path

from tests.test_check_problems import check, good, line_of

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
