"""How long `python -m bot demo --yes` takes, in total and per runbook step.

Runs the demo as a subprocess (a full rollback of the bundled sample app on this machine: two
local "hosts", a real SQLite database, the app really serving on 127.0.0.1) and timestamps its
output as it arrives. The demo prints the parent message each time it changes, so a step's time
is read from the checklist: from the first print showing it started (⏳/✋) to the first showing
it done (✅, ❌, or skipped). The monitor step's length is set by the demo's config (6 s).

    python bench/demo_run.py [--timeout 300]

Prints figures; asserts nothing about them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.workflow.steps import STEPS  # noqa: E402

STARTED = ("⏳", "✋")
ENDED = ("✅", "❌", "➖")


def run(timeout: float) -> None:
    titles = [spec.title for spec in STEPS]
    started: dict[str, float] = {}
    ended: dict[str, tuple[float, str]] = {}
    lines: list[str] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    begin = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--yes"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    first_output: float | None = None
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            now = time.perf_counter() - begin
            lines.append(raw.rstrip("\n"))
            if first_output is None and raw.startswith("Demo:"):
                first_output = now
            text = raw.removeprefix("│").strip()
            for title in titles:
                for mark in STARTED + ENDED:
                    if text == f"{mark} {title}" or text.startswith(f"{mark} {title} — "):
                        if mark in STARTED:
                            started.setdefault(title, now)
                        elif title not in ended:
                            ended[title] = (now, mark)
        code = proc.wait()
    finally:
        killer.cancel()
    total = time.perf_counter() - begin

    print("python -m bot demo --yes")
    print(f"  exit code {code}; total wall time {total:.2f} s")
    if first_output is not None:
        print(f"  set-up (sample repo, 2 hosts, migrations, apps started): {first_output:.2f} s")
    outcome = next((ln for ln in reversed(lines) if ln.startswith("Outcome:")), "")
    if outcome:
        print(f"  {outcome}")
    if not ended:
        print("  (no per-step times: the output shows no checklist)")
        return
    print(f"  {'step':40}{'start':>8}{'end':>8}{'took':>8}")
    previous_end = first_output or 0.0
    for title in titles:
        if title not in ended:
            continue
        end, mark = ended[title]
        start = started.get(title, previous_end)
        print(f"  {mark} {title:38}{start:8.2f}{end:8.2f}{end - start:8.2f}")
        previous_end = end
    print("  (seconds from launch; a step's start is when it first shows ⏳/✋ — a gate's")
    print("   wait for the automatic --yes answer is included — or the previous step's end)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--timeout", type=float, default=300, help="kill the demo after (s)")
    args = parser.parse_args()
    run(min(max(args.timeout, 10.0), 900.0))


if __name__ == "__main__":
    main()
