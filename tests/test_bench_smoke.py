"""`python -m bench` runs: its cheapest section, as a user starts it (figures are not judged)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_python_m_bench_quick_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "budget", "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "## Summary" in text and "4. Slack budget" in text
    assert "| lines lost | **0** (goal 0) |" in text  # nothing dropped, whatever the timings
    assert "cpu:" in text  # the machine is said
