"""`python -m bot demo --yes` as a newcomer runs it: on a terminal (a pty) and through a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pexpect
import redis
from rich.cells import cell_len

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    return clean | {"PYTHONPATH": str(ROOT)}


def files_dir(out: str) -> Path:
    found = re.search(r"^Files: (\S+)$", out, re.M)
    assert found, out[:500]
    return Path(found.group(1))


def test_demo_off_a_terminal_is_a_short_log_with_true_last_lines(
    tmp_path: Path, redis_url: str
) -> None:
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
        # Wrapped, never cut: wider only a command to copy, or a path that cannot be broken.
        wide = [line for line in lines if cell_len(line) > 80]
        assert all(
            line.lstrip().startswith("$ ") or max(map(cell_len, line.split())) > 50 for line in wide
        ), wide
        assert "…" not in out
        joined = " ".join(line.strip() for line in lines)
        assert "Roll back if the issue is severe and a fix will take time; fix forward if it " \
            "is minor and the fix is quick." in joined  # fmt: skip
        assert "Runbook checklist" not in out  # no parent box, let alone 26 of them
        assert "@carol chose Roll back." in out and "@@" not in out
        # Each change of the checklist once: the finished steps appear one time each.
        assert out.count("✅ Redeploy previous version") == 1
        assert "Recovered: myapp is back on v1.4.2" in out
        if Path("/proc/stat").exists():  # each host's resource usage, read from /proc and df
            assert re.search(r"Resource usage before the rollback: web1: CPU [\d.]+ %", out), out
        urls = re.findall(r"(web\d): (http://127\.0\.0\.1:\d+)/healthz", out)
        assert [host for host, _ in urls] == ["web1", "web2"]
        for host, base in urls:
            assert f"{host}: serves 1.4.2, /healthz 200" in out
            with urllib.request.urlopen(f"{base}/version", timeout=5) as resp:
                assert resp.read().decode().strip() == "1.4.2"  # what the last lines said
        assert len(stop) == 2 and lines[-1] == f"  rm -rf {root}"
        _the_printed_commands_run_as_printed(out, root, redis_url)
    finally:
        for command in stop:
            subprocess.run(command, shell=True, check=False, capture_output=True)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _the_printed_commands_run_as_printed(out: str, root: Path, redis_url: str) -> None:
    """`demo --keep` says how to go on with the real CLI: its lines run, in one shell, as
    printed, against the kept sample (REDIS_URL, from the environment, names the test's Redis)."""
    commands = [line.strip()[2:] for line in out.splitlines() if line.strip().startswith("$ ")]
    assert len(commands) == 4, commands
    assert commands[0].startswith(f"export REWIND_CONFIG={root}/apps.yaml ")
    assert commands[1].endswith('redis-server --daemonize yes --save "" --appendonly no')
    assert commands[2].endswith(" check")
    assert " rollback myapp v1.4.2 --reason " in commands[3]
    script = "set -e\n" + "".join(f"{c}\necho '=== ran {i}'\n" for i, c in enumerate(commands))
    ran = subprocess.run(
        ["bash", "-c", script], cwd=root, env=env() | {"REDIS_URL": redis_url},
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    said = ran.stdout
    assert ran.returncode == 0, said[-3000:] + ran.stderr[-3000:]
    assert all(f"=== ran {i}" in said for i in range(4)), said[-3000:]
    assert "✓ all well" in said
    assert "Recovered: myapp is back on v1.4.2" in said
    assert (root / "workspace" / "files").is_dir()  # the workspace is the kept sample's
    assert redis.Redis.from_url(redis_url).keys("rewind:incident:*")  # stored where REDIS_URL says


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
