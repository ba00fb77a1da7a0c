"""Says each failure the moment it happens, not only in the summary at the end.

A run cut short by its deadline (scripts/test.sh) never prints pytest's summary, and CI shows
only the tail of its output: without this, a run that fails late says nothing about what failed.
Runs only in the process that reports (the xdist controller, or a plain run).
"""

from __future__ import annotations

import sys

import pytest

_reporting = False


def _tail(report: pytest.TestReport, lines: int = 6) -> str:
    text = str(report.longrepr or "").strip().splitlines()
    return "\n".join("    " + line for line in text[-lines:])


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _reporting:
        return
    if report.failed or (report.when == "call" and report.outcome == "rerun"):
        what = "rerun" if report.outcome == "rerun" else f"FAILED ({report.when})"
        took = f"{report.duration:.0f} s"
        sys.stderr.write(f"\n{what} after {took}: {report.nodeid}\n{_tail(report)}\n")
        sys.stderr.flush()


def pytest_configure(config: pytest.Config) -> None:
    global _reporting
    _reporting = not hasattr(config, "workerinput")
