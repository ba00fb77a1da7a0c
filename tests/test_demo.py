"""`python -m bot demo --yes` as a newcomer runs it: on a terminal (a pty) and through a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pexpect
from rich.cells import cell_len

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    return clean | {"PYTHONPATH": str(ROOT)}


def files_dir(out: str) -> Path:
    found = re.search(r"^Files: (\S+)$", out, re.M)
    assert found, out[:500]
    return Path(found.group(1))


def test_demo_off_a_terminal_is_a_short_log_with_true_last_lines(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--yes", "--keep"], cwd=tmp_path, env=env(),
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    out = proc.stdout
    root = files_dir(out)
    lines = out.splitlines()
    stop = [line.strip() for line in lines if line.strip().endswith("run.sh stop")]
    try:
        assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
        assert len(lines) < 150, len(lines)
        wide = [line for line in lines if cell_len(line) > 80]
        assert not wide, wide
        assert "Runbook checklist" not in out  # no parent box, let alone 26 of them
        assert "@carol chose Roll back." in out and "@@" not in out
        # Each change of the checklist once: the finished steps appear one time each.
        assert out.count("✅ Redeploy previous version") == 1
        assert "Recovered: myapp is back on v1.4.2" in out
        urls = re.findall(r"(web\d): (http://127\.0\.0\.1:\d+)/healthz", out)
        assert [host for host, _ in urls] == ["web1", "web2"]
        for host, base in urls:
            assert f"{host}: serves 1.4.2, /healthz 200" in out
            with urllib.request.urlopen(f"{base}/version", timeout=5) as resp:
                assert resp.read().decode().strip() == "1.4.2"  # what the last lines said
        assert len(stop) == 2 and lines[-1] == f"  rm -rf {root}"
    finally:
        for command in stop:
            subprocess.run(command, shell=True, check=False, capture_output=True)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_demo_on_a_terminal_redraws_one_live_view(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable, ["-m", "bot", "demo", "--yes"], cwd=str(tmp_path), env=env(),
        encoding="utf-8", timeout=240, dimensions=(40, 100),
    )  # fmt: skip
    child.expect(pexpect.EOF)
    child.close()
    raw = child.before or ""
    assert child.exitstatus == 0, raw[-3000:]
    # The panel is redrawn in place (cursor up + erase line), not printed again below.
    assert re.search(r"\x1b\[\d*A", raw) and "\x1b[2K" in raw
    assert "╭" in raw and "Runbook checklist" not in raw
    tail = [line.rstrip("\r") for line in raw.splitlines()[-5:]]
    assert tail[0] == "Outcome: Recovered: myapp is back on v1.4.2, all criteria met."
    assert tail[1:3] == ["  web1: serves 1.4.2, /healthz 200", "  web2: serves 1.4.2, /healthz 200"]
    assert tail[3].startswith("The sample app is stopped")
    assert not Path(tail[4].strip()).exists()  # the temporary directory is gone
