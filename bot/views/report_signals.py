"""The report's "Signals" section: each of the team's metrics before the bad deploy and after
the rollback, with its threshold and verdict; each host's resource usage before and after.
Pure, Markdown; nothing when the app has neither `metrics:` nor `resources:`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.workflow.facts import ResourceFact, SignalFact
from bot.workflow.model import Incident

_VERDICT = {"passed": "✅ passed", "failed": "❌ failed", "inconclusive": "❔ inconclusive"}


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return out + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g}" + (f" {unit}" if unit else "")


def _usage(fact: ResourceFact | None) -> str:
    if fact is None:
        return "not read"
    cpu, memory, disk = (_value(v, "%") for v in (fact.cpu, fact.memory, fact.disk))
    return f"CPU {cpu}, memory {memory}, disk {disk}"


def _signal_rows(verify: list[SignalFact], last: list[SignalFact]) -> list[tuple[str, ...]]:
    at_verify = {f.name: f for f in verify}
    at_end = {f.name: f for f in last}
    rows: list[tuple[str, ...]] = []
    for name in dict.fromkeys([*at_verify, *at_end]):
        shown = at_end.get(name) or at_verify[name]
        checked = at_verify.get(name)
        rows.append((
            name,
            _value(shown.before, shown.unit),
            _value(checked.value, checked.unit) if checked else "not read",
            _value(at_end[name].value, shown.unit) if name in at_end else "not read",
            shown.threshold,
            _VERDICT[shown.verdict] + (f": {_why(shown)}" if not shown.passed else ""),
        ))  # fmt: skip
    return rows


def _why(fact: SignalFact) -> str:
    """The reason part of the sentence (after the threshold's parenthesis), if any."""
    _, _, reason = fact.said.partition("): ")
    return reason


def signals_section(incident: Incident) -> list[str]:
    facts = incident.facts
    metrics, end = facts.verify.signals, facts.monitor.signals
    before = {f.host: f for f in facts.assess.resources}
    after = {f.host: f for f in facts.verify.resources} | {
        f.host: f for f in facts.monitor.resources
    }
    if not (metrics or end or before or after):
        return []
    out = ["## Signals", ""]
    if metrics or end:
        headers = ("Signal", "Before the bad deploy", "At Verify", "End of monitoring",
                   "Threshold", "Verdict")  # fmt: skip
        out += [*_table(headers, _signal_rows(metrics, end)), ""]
        queries = {f.name: f.query for f in [*metrics, *end]}
        out += [f"- {name}: `{query}`" for name, query in queries.items()] + [""]
    if before or after:
        rows = [
            (host, _usage(before.get(host)), _usage(after.get(host)),
             _VERDICT[after[host].verdict] if host in after else "not read")
            for host in dict.fromkeys([*before, *after])
        ]  # fmt: skip
        out += ["Resource usage per host:", ""]
        out += [*_table(("Host", "Before the rollback", "After", "Verdict"), rows), ""]
    return out
