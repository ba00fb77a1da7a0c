"""The watch's thresholds, on figures made up here (pure: no Redis, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config.apps_file import WatchConfig
from bot.watch.deploys import Deploy
from bot.watch.judge import figures, verdict
from bot.watch.model import Sample, Tick, Watch
from bot.workflow.baseline import Baseline

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
CFG = WatchConfig(duration=600, interval=30)


def watch(
    rounds: list[list[tuple[bool, float]]], *, errors: int = 0, base_p95: float = 20
) -> Watch:
    """rounds: per tick, (ok, latency ms) for web1 and web2's /healthz."""
    deploy = Deploy(id="d", app="myapp", version="v1.5.0", environment="staging", at=T0)
    w = Watch(
        id="w", deploy=deploy, duration=600, interval=30,
        baseline=Baseline(version="v1.4.2", measured_at=T0, availability=100, p95_ms=base_p95),
    )  # fmt: skip
    for n, probes in enumerate(rounds):
        samples = [
            Sample(url="http://lb/healthz", host=f"web{i + 1}", ok=ok,
                   status=200 if ok else 500, latency_ms=ms)
            for i, (ok, ms) in enumerate(probes)
        ]  # fmt: skip
        at = T0 + timedelta(seconds=30 * (n + 1))
        w.ticks.append(Tick(n=n, at=at, worker="w", samples=samples, errors={"web1": errors}))
    return w


def test_healthy_and_a_single_failed_probe_are_fine() -> None:
    assert verdict(watch([[(True, 10), (True, 12)]] * 10), CFG) is None
    flapping = [[(True, 10), (True, 12)]] * 9 + [[(False, 10), (True, 12)]]
    assert figures(watch(flapping)).availability == 95
    assert verdict(watch(flapping), CFG) is None


def test_two_failed_probes_in_a_row_name_the_hosts() -> None:
    found = verdict(
        watch([[(True, 10), (True, 10)], [(False, 5), (False, 5)], [(False, 5)] * 2]), CFG
    )
    assert found is not None
    assert found.text() == (
        "/healthz answers 500 on web1 and web2 (availability 33.33 %, was 100 %)"
    )


def test_three_scattered_failures_are_bad_too() -> None:
    rounds = [[(False, 10), (True, 10)], [(True, 10), (True, 10)]] * 3
    found = verdict(watch(rounds), CFG)
    assert found is not None
    assert found.text() == "/healthz answers 500 on web1 (availability 75 %, was 100 %)"


def test_p95_twice_the_baseline_and_50_ms_more() -> None:
    slow = [[(True, 300), (True, 320)]] * 5
    found = verdict(watch(slow, base_p95=100), CFG)
    assert found is not None and "p95 320 ms, was 100 ms" in found.text()
    # Doubling a tiny p95 is noise.
    assert verdict(watch([[(True, 9), (True, 9)]] * 5, base_p95=3), CFG) is None


def test_error_lines_over_ten_a_minute() -> None:
    rounds = [[(True, 10), (True, 10)]] * 2  # one minute after the deploy
    assert verdict(watch(rounds, errors=10), CFG) is None
    found = verdict(watch(rounds, errors=25), CFG)
    assert found is not None
    assert found.text() == (
        "25 error line(s) in the logs of web1 (25 error line(s) in the logs, 25 a minute)"
    )
