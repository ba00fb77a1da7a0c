"""The report's "Signals" section: each metric before the bad deploy and after the rollback,
with its threshold and verdict; each host's resource usage before and after."""

from __future__ import annotations

from bot.views.report import render_report
from bot.workflow.facts import ResourceFact, SignalFact
from tests.test_report import STEPS, TIMELINE, recovered_incident

RATE = "checkout error rate"


def signal(value: float | None, verdict: str, said: str) -> SignalFact:
    return SignalFact.model_validate(
        {"name": RATE, "provider": "prometheus", "verdict": verdict, "value": value,
         "before": 0.001, "threshold": "max 0.01", "query": "sum(rate(x[1m]))", "said": said}
    )  # fmt: skip


def test_the_report_has_a_signals_table_and_resources_per_host() -> None:
    inc = recovered_incident()
    inc.facts.verify.signals = [signal(0.004, "passed", f"{RATE} 0.004 (before 0.001; max 0.01)")]
    gone = f"{RATE} no value (max 0.01): Prometheus at http://prom:9090 could not be reached"
    inc.facts.monitor.signals = [signal(None, "inconclusive", gone)]
    inc.facts.assess.resources = [ResourceFact(host="web1", verdict="passed", cpu=97.5,
                                               memory=80, disk=61)]  # fmt: skip
    inc.facts.monitor.resources = [ResourceFact(host="web1", verdict="passed", cpu=12.25,
                                                memory=40, disk=61)]  # fmt: skip
    text = render_report(inc, TIMELINE, STEPS)

    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections.index("## Signals") == sections.index("## Impact") + 1
    assert (
        "| Signal | Before the bad deploy | At Verify | End of monitoring | Threshold | Verdict |"
    ) in text
    assert (
        "| checkout error rate | 0.001 | 0.004 | n/a | max 0.01 | ❔ inconclusive: Prometheus at "
        "http://prom:9090 could not be reached |"
    ) in text
    assert "- checkout error rate: `sum(rate(x[1m]))`" in text
    assert "| Host | Before the rollback | After | Verdict |" in text
    assert (
        "| web1 | CPU 97.5 %, memory 80 %, disk 61 % | CPU 12.2 %, memory 40 %, disk 61 % "
        "| ✅ passed |"
    ) in text


def test_no_signals_no_section() -> None:
    text = render_report(recovered_incident(), TIMELINE, STEPS)
    assert "## Signals" not in text and "Resource usage per host" not in text
