"""`python -m bench` runs: its sections at their tiniest size, as a user starts them, so the
bench scripts cannot rot (figures are not judged)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench(out: Path, only: str, timeout: float = 300) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", only, "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "## Summary" in text and "cpu:" in text  # the machine is said
    assert "Not measured" not in text, text
    return text


def test_python_m_bench_quick_writes_its_results(tmp_path: Path) -> None:
    text = bench(tmp_path / "RESULTS.md", "budget")
    assert "4. Slack budget" in text
    assert "| lines lost | **0** (goal 0) |" in text  # nothing dropped, whatever the timings


def test_the_whole_rollback_and_the_warm_release_run_beside_their_scripts(tmp_path: Path) -> None:
    """One sshd host: Rewind's whole rollback through Slack and the plain OpenSSH script doing
    the same runbook, each checked to end on the target; then the warm release and its
    symlink script."""
    text = bench(tmp_path / "RESULTS.md", "rollback,warm", timeout=600)
    assert "3. Whole rollback" in text and "2b. Warm release" in text
    assert "| 1 |" in text  # a row for the one host, Rewind beside the script
    assert "Where the time goes at 1 hosts" in text
