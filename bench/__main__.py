"""`python -m bench`: every figure beside its baseline, measured in the same run.

Prints the tables and writes `bench/RESULTS.md` (with the machine), and the summary into the
README's figures table. `--quick` runs one small size of each and writes nothing (unless
`--out` says where). Not part of the test suite: nothing here asserts a timing.

Needs what the tests need (root, sshd, PostgreSQL on 127.0.0.1, redis-server); starts its own
redis-server. Every loop is bounded in count and time; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import re
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ack, fanout, question_first, rollback, scale, slack_budget, warm
from bench.lab import machine, private_redis

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
SECTIONS = (
    "ack", "fanout", "warm", "rollback", "budget", "scale", "watch", "metric", "growth", "question",
)  # fmt: skip
START, END = "<!-- bench:figures:start -->", "<!-- bench:figures:end -->"


class Report:
    def __init__(self) -> None:
        self.summary: list[str] = []  # rows of the summary table
        self.details: list[str] = []
        self.missed: list[str] = []

    def row(self, what: str, rewind: str, baseline: str, ratio: str, goal: str, met: bool | None):
        verdict = "—" if met is None else ("met" if met else "**missed**")
        self.summary.append(f"| {what} | {rewind} | {baseline} | {ratio} | {goal} | {verdict} |")

    def section(self, title: str, lines: list[str], took: float) -> None:
        self.details += [f"## {title}", "", *lines, "", f"_(measured in {took:.0f} s)_", ""]
        print(f"\n## {title}\n")
        print("\n".join(lines))

    def summary_table(self) -> list[str]:
        head = ["| figure | Rewind | baseline | ratio | goal | |", "|---|---:|---:|---:|---|---|"]
        return head + self.summary


def run_ack(rep: Report, quick: bool) -> None:
    r = ack.main(quick)
    rep.row(f"`/rollback` ack p99, {r.n} requests at concurrency {r.concurrency}",
            f"{r.serve.p99:.0f} ms", f"{r.bare.p99:.0f} ms (bare Bolt)", f"{r.ratio:.2f}×",
            "≤ 1.3×", r.ratio <= 1.3)  # fmt: skip
    rep.row("`/rollback` → the incident's first message", f"{r.first_message * 1000:.0f} ms",
            "", "", "", None)  # fmt: skip
    if r.ratio > 1.3:
        rep.missed.append("ack")
    return_lines(rep, "1. Ack", ack.table(r))


def run_fanout(rep: Report, quick: bool) -> None:
    rows = fanout.main(quick)
    for r in rows:
        rep.row(f"redeploy commands on {r.hosts} sshd host(s)", f"{r.rewind:.2f} s",
                f"{r.baseline:.2f} s (plain ssh)", f"{r.ratio:.2f}×", "≤ 1.2×",
                r.ratio <= 1.2)  # fmt: skip
        if r.ratio > 1.2:
            rep.missed.append(f"fanout {r.hosts}")
    return_lines(rep, "2. Fan-out", fanout.table(rows))


def run_warm(rep: Report, quick: bool) -> None:
    rows = warm.main(quick)
    for r in rows:
        rep.row(f"rollback to a warm release, {r.hosts} sshd host(s)", f"{r.rewind:.2f} s",
                f"{r.baseline:.2f} s (symlink script)", f"{r.ratio:.2f}×", "≤ 1.2×",
                r.ratio <= 1.2)  # fmt: skip
        if r.ratio > 1.2:
            rep.missed.append(f"warm {r.hosts}")
    return_lines(rep, "2b. Warm release", warm.table(rows))


def run_rollback(rep: Report, quick: bool) -> None:
    rows = rollback.main(quick, _options.hosts, _options.runs)
    for r in rows:
        goal = r.goal
        if r.error or not r.runs or not r.scripts:
            rep.missed.append(f"rollback {r.hosts} (not measured)")
            continue
        rep.row(f"whole rollback through Slack, {r.hosts} sshd host(s), DB downgrade + backup "
                f"(median of {len(r.runs)})", f"{r.rewind:.1f} s",
                f"{r.baseline:.1f} s (plain parallel OpenSSH script, same runbook)",
                f"{r.ratio:.2f}×", f"≤ {goal}×" if goal else "",
                None if goal is None else r.ratio <= goal)  # fmt: skip
        if goal is not None and r.ratio > goal:
            rep.missed.append(f"rollback {r.hosts}")
    return_lines(rep, "3. Whole rollback", rollback.table(rows))


def run_budget(rep: Report, quick: bool) -> None:
    r = slack_budget.main(quick)
    calls = sum(r.api_calls.values())
    ours = f"{calls} API calls, {r.limited} × 429"
    rep.row(f"Slack: {r.lines:,} lines from {r.hosts} hosts", ours,
            f"{r.lines:,} calls (one per line)", f"{calls / r.lines:.3f}×", "0 lines lost",
            r.lost == 0)  # fmt: skip
    rep.row("Slack: line printed → visible", f"p50 {r.lag_p50:.1f} s, max {r.lag_max:.1f} s",
            "", "", "", None)  # fmt: skip
    if r.lost:
        rep.missed.append("budget")
    return_lines(rep, "4. Slack budget", slack_budget.table(r))


def run_scale(rep: Report, quick: bool) -> None:
    r = scale.main(quick)
    worst = max(r.rss_mb)
    rep.row(f"{r.many.incidents} incidents at once on 2 workers: worker peak RSS",
            f"{worst:.0f} MB", "", "", "< 150 MB", worst < 150)  # fmt: skip
    rep.row(f"{r.many.incidents} incidents at once: step latency p95",
            f"{r.many.step_p95:.2f} s", f"{r.alone.step_p95:.2f} s (1 alone)",
            f"{r.many.step_p95 / r.alone.step_p95:.1f}×", "", None)  # fmt: skip
    rep.row("Redis commands per incident", f"{r.many.redis_per_incident:,.0f}",
            f"{r.alone.redis_per_incident:,.0f} (1 alone)", "", "", None)  # fmt: skip
    if worst >= 150:
        rep.missed.append("scale rss")
    return_lines(rep, "5. Scale", scale.table(r))


def run_watch(rep: Report, quick: bool) -> None:
    try:
        from bench import watch_proposal  # type: ignore[attr-defined]
    except ImportError:
        return
    main: Callable[..., Any] | None = getattr(watch_proposal, "main", None)
    if main is None:
        return
    out = io.StringIO()
    with private_redis() as url:
        watch_proposal.REDIS_URL = url  # its own Redis, never a shared database
        with contextlib.redirect_stdout(out):
            main(["--runs", "2" if quick else "5"])
    lines = out.getvalue().strip().splitlines()
    figure = next((ln.strip() for ln in lines if "median" in ln), lines[-1] if lines else "")
    rep.row("deploy's first failed probe → rollback proposal in Slack", figure, "", "", "", None)
    return_lines(rep, "6. Watch: a bad deploy proposed for rollback", ["```", *lines, "```"])


def run_metric(rep: Report, quick: bool) -> None:
    """The metric twin of `watch`: a real Prometheus scrapes the sample app; probes all pass."""
    from bench import watch_metric_proposal, watch_proposal

    out = io.StringIO()
    with private_redis() as url:
        watch_proposal.REDIS_URL = url  # the metric bench flushes this one, never a shared one
        with contextlib.redirect_stdout(out):
            watch_metric_proposal.main(["--runs", "2" if quick else "3"])
    lines = out.getvalue().strip().splitlines()
    figure = next((ln.strip() for ln in lines if "median" in ln), lines[-1] if lines else "")
    rep.row("deploy's first failing error-rate scrape (Prometheus) → rollback proposal in Slack",
            figure, "the probe-based watch (6.)", "", "", None)  # fmt: skip
    return_lines(rep, "6b. Watch: a bad deploy found by its metric", ["```", *lines, "```"])


def run_growth(rep: Report, quick: bool) -> None:
    from bench import redis_growth  # starts its own redis-server

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        redis_growth.main(["--n", "1000" if quick else "10000", "--timeout", "600"])
    lines = out.getvalue().strip().splitlines()
    rows = [ln.split() for ln in lines if re.match(r"^\s*[\d,]+(\s+[\d,]+){4}\s*$", ln)]
    if rows:
        first, last = (int(r[3].replace(",", "")) for r in (rows[0], rows[-1]))
        flat = last <= first * 1.1
        rep.row(f"Redis memory per closed incident, {rows[0][0]} → {rows[-1][0]} closed",
                f"{last:,} B", f"{first:,} B (at {rows[0][0]})", f"{last / first:.2f}×",
                "flat", flat)  # fmt: skip
        if not flat:
            rep.missed.append("growth")
    return_lines(rep, "7. Growth: Redis memory over many closed incidents", ["```", *lines, "```"])


def run_question(rep: Report, quick: bool) -> None:
    r = question_first.main(quick)
    p95, before = r.p(r.first, 95), r.p(r.queued, 95)
    rep.row("step end → buttons visible, busy thread (p95)", f"{p95:.2f} s",
            f"{before:.2f} s (queued behind the output)", f"{p95 / before:.2f}×",
            f"≤ {question_first.GOAL} s", p95 <= question_first.GOAL)  # fmt: skip
    if p95 > question_first.GOAL:
        rep.missed.append("question first")
    return_lines(rep, "8. A question first", question_first.table(r))


def return_lines(rep: Report, title: str, lines: list[str]) -> None:
    rep.section(title, lines, time.monotonic() - _started[0])


_started = [0.0]


class _Options:
    """What the command line chose for the sections that take sizes (None: their defaults)."""

    hosts: list[int] | None = None
    runs: int | None = None


_options = _Options()


def _sizes(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


RUNNERS: dict[str, Callable[[Report, bool], None]] = {
    "ack": run_ack,
    "fanout": run_fanout,
    "warm": run_warm,
    "rollback": run_rollback,
    "budget": run_budget,
    "scale": run_scale,
    "watch": run_watch,
    "metric": run_metric,
    "growth": run_growth,
    "question": run_question,
}


def write(rep: Report, out: Path, info: dict[str, str], shared: str, wall: float) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [
        "# Rewind's figures, each beside what a user would run instead",
        "",
        f"Written by `python -m bench` on {when} ({wall / 60:.0f} min). Every figure and its "
        "baseline were measured in the same run, on this machine:",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
    ]
    if shared:
        text += [f"**{shared}**", ""]
    text += ["## Summary", "", *rep.summary_table(), ""]
    if rep.missed:
        text += ["Goals missed: " + ", ".join(rep.missed) + ". What limits each is said in its "
                 "section below.", ""]  # fmt: skip
    text += rep.details
    out.write_text("\n".join(text).rstrip() + "\n")
    if out.resolve() != (HERE / "RESULTS.md").resolve():
        return  # figures written elsewhere (a smoke run) are not the README's
    if README.exists() and START in (readme := README.read_text()) and END in readme:
        block = "\n".join([START, *rep.summary_table(), END])
        README.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block,
                                 readme, flags=re.S))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one small size of each, ~3 min")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--out", type=Path, default=None, help="where to write the results")
    parser.add_argument("--shared", default="", help="a note on what else used the machine")
    parser.add_argument("--hosts", type=_sizes, default=None, help="rollback: sizes, e.g. 1,5,20")
    parser.add_argument("--runs", type=int, default=None, help="rollback: runs of each per size")
    args = parser.parse_args()
    _options.hosts, _options.runs = args.hosts, args.runs
    logging.basicConfig(level=logging.WARNING)
    info = machine()
    rep = Report()
    began = time.monotonic()
    for name in [s.strip() for s in args.only.split(",") if s.strip()]:
        _started[0] = time.monotonic()
        try:
            RUNNERS[name](rep, args.quick)
        except Exception as exc:  # one failed section must not lose the others' figures
            traceback.print_exc()
            rep.section(name, [f"**Not measured: {type(exc).__name__}: {exc}**"], 0)
            rep.missed.append(f"{name} (not measured)")
    print("\n## Summary\n")
    print("\n".join(rep.summary_table()))
    out = args.out or (None if args.quick else HERE / "RESULTS.md")
    if out is not None:
        write(rep, out, info, args.shared, time.monotonic() - began)
        print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
