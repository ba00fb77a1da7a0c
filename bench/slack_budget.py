"""Slack budget: an incident whose step prints 20,000 lines across 20 hosts, against a Slack
stand-in that enforces Slack's limits.

The stand-in (the tests' Slack fake over HTTP) answers 429 with `Retry-After` when a channel
gets a second message within 1 s (chat.postMessage, a file shared in it), and when chat.update
goes over Tier 3 (50 a minute). Rewind's side is the production path: 20 hosts (local runner)
each print 1,000 lines as fast as a small program writes them, through the runner's script into
the step's output, to the `SlackNotifier`; the parent is updated every 100 ms meanwhile.

Measured: Web API calls, 429s met, the lag from a line reaching Rewind to it being visible in
Slack (in a message, or in a file once shared), lines lost (must be 0).
"""

from __future__ import annotations

import asyncio
import math
import re
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.lab import percentile
from bot.config.apps_file import AppsFile, parse_apps
from bot.fronts.slack.notifier import SlackNotifier
from bot.fronts.slack.slack_api import make_client
from bot.ports import ScriptCommand
from bot.workflow.machine import new_steps
from bot.workflow.model import Incident, StepId, StepStatus
from runners.local import LocalRunner
from tests.slack_fake import SlackFake, _Fault

CHANNEL = "C0INCIDENT"
LINE = re.compile(r"L(\d+)-(\d+)#")


class LimitedSlack(SlackFake):
    """The Slack fake, enforcing 1 message/s per channel and Tier 3 for chat.update."""

    def __init__(self) -> None:
        super().__init__()
        self.last_message: dict[str, float] = {}
        self.updates: deque[float] = deque()

    async def _delay_and_fault(self, method: str) -> _Fault | None:
        args = self.calls[-1].args  # the call being answered, recorded just before
        now = time.monotonic()
        channel = None
        if method == "chat.postMessage":
            channel = str(args.get("channel") or "")
        elif method == "files.completeUploadExternal":
            channel = str(args.get("channel_id") or "")
        if channel:
            last = self.last_message.get(channel)
            if last is not None and now - last < 1.0:
                return _Fault(429, "ratelimited", 1, None, 1)
            self.last_message[channel] = now
        if method == "chat.update":
            while self.updates and now - self.updates[0] >= 60:
                self.updates.popleft()
            if len(self.updates) >= 50:
                wait = math.ceil(60 - (now - self.updates[0]))
                return _Fault(429, "ratelimited", wait, None, 1)
            self.updates.append(now)
        return await super()._delay_and_fault(method)


@dataclass
class Result:
    lines: int
    hosts: int
    printing: float  # first line to last line received
    api_calls: Counter[str] = field(default_factory=Counter)
    limited: int = 0
    lag_p50: float = 0.0
    lag_max: float = 0.0
    lost: int = 0
    in_messages: int = 0
    in_files: int = 0
    parent_updates: int = 0


def apps(hosts: int, root: Path) -> AppsFile:
    app = {
        "environment": "staging",
        "repo": str(root / "origin.git"),
        "incident_channel": CHANNEL,
        "operators": ["U0CAROL"],
        "ssh": {"transport": "local"},
        "hosts": [
            {"name": f"web{i}", "address": "127.0.0.1", "workdir": str(root)} for i in range(hosts)
        ],
        "deploy": {"strategy": "systemd", "workdir": str(root), "service": "myapp"},
    }
    return parse_apps({"apps": {"myapp": app}}, "bench")


def printer(host: int, lines: int) -> str:
    """A small program printing `lines` numbered lines, 10 ms apart."""
    program = (
        "import sys, time\n"
        f"for i in range({lines}):\n"
        f"    print(f'L{host}-{{i}}# Collecting package-{{i}}==1.{{i % 50}}.0 from mirror',"
        " flush=True)\n"
        "    time.sleep(0.01)\n"
    )
    return f"{sys.executable} -c {_quote(program)}"


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


async def measure(lines: int = 20_000, hosts: int = 20) -> Result:
    per_host = lines // hosts
    with tempfile.TemporaryDirectory(prefix="rewind-bench-budget-") as tmp:
        root = Path(tmp)
        the_apps = apps(hosts, root)
        async with LimitedSlack() as slack:
            notifier = SlackNotifier(make_client("xoxb-bench", slack.api_url), the_apps)
            inc = Incident(
                id="budget", app="myapp", environment="staging", requested_version="v1.4.2",
                reason="bench", requested_by="U0CAROL", steps=new_steps(),
            )  # fmt: skip
            inc.thread = await notifier.open_thread(inc)
            inc.step(StepId.REDEPLOY).status = StepStatus.RUNNING
            mark = slack.mark()
            received: dict[tuple[int, int], float] = {}

            async def sink(host: str, line: str) -> None:
                match = LINE.match(line)
                if match:
                    received[(int(match[1]), int(match[2]))] = time.monotonic()
                await notifier.output(inc, StepId.REDEPLOY, host, line)

            runner = LocalRunner(the_apps.apps["myapp"])
            stop = asyncio.Event()

            async def parent_updates() -> int:
                count = 0
                nonlocal inc
                while not stop.is_set():
                    inc = inc.model_copy(deep=True)
                    inc.version += 1
                    inc.facts.waiting["progress"] = f"{len(received)}/{lines} lines"
                    await notifier.update_parent(inc)
                    count += 1
                    await asyncio.sleep(0.1)
                return count

            updater = asyncio.create_task(parent_updates())
            began = time.monotonic()
            await asyncio.gather(
                *(
                    runner.run_script(
                        f"web{i}", [ScriptCommand(printer(i, per_host))], timeout=300, on_line=sink
                    )
                    for i in range(hosts)
                )
            )
            printed = time.monotonic() - began
            stop.set()
            updates = await updater
            await notifier.flush(inc)
            await notifier.aclose()
            calls = slack.calls[mark:]
            visible = _visible(slack, calls)
    result = Result(lines=per_host * hosts, hosts=hosts, printing=printed, parent_updates=updates)
    result.api_calls = Counter(c.method for c in calls if c.method not in ("upload_url",))
    result.limited = sum(1 for c in calls if c.status == 429)
    lags = [visible[key][0] - at for key, at in received.items() if key in visible]
    result.lag_p50 = percentile(lags, 50)
    result.lag_max = max(lags) if lags else float("nan")
    expected = {(h, i) for h in range(hosts) for i in range(per_host)}
    result.lost = len(expected - visible.keys())
    result.in_messages = sum(1 for v in visible.values() if v[1] == "message")
    result.in_files = sum(1 for v in visible.values() if v[1] == "file")
    return result


def _visible(slack: SlackFake, calls: list[Any]) -> dict[tuple[int, int], tuple[float, str]]:
    """Each line's first moment in Slack (monotonic, like `received`), and where."""
    offset = time.monotonic() - time.time()  # the fake stamps calls with wall-clock time
    seen: dict[tuple[int, int], tuple[float, str]] = {}
    files = {f.id: f for f in slack.files}

    def note(text: str, at: float, where: str) -> None:
        for h, i in LINE.findall(text):
            key = (int(h), int(i))
            if key not in seen or at < seen[key][0]:
                seen[key] = (at, where)

    for c in calls:
        if not (c.ok and c.status == 200):
            continue
        at = c.at + offset
        if c.method == "chat.postMessage":
            note(str(c.args.get("text", "")) + str(c.args.get("blocks", "")), at, "message")
        elif c.method == "files.completeUploadExternal":
            for entry in c.args.get("files") or []:
                f = files.get(str(entry.get("id"))) if isinstance(entry, dict) else None
                if f is not None:
                    note(f.text, at, "file")
    return seen


def table(r: Result) -> list[str]:
    calls = sum(r.api_calls.values())
    detail = ", ".join(f"{m} {n}" for m, n in r.api_calls.most_common())
    naive_hours = r.lines / 3600
    return [
        f"{r.lines:,} output lines from {r.hosts} hosts, printed over {r.printing:.1f} s, the "
        f"parent updated every 100 ms ({r.parent_updates} updates asked for), against a Slack "
        "stand-in enforcing 1 message/s per channel and Tier 3 `chat.update` with 429 + "
        "Retry-After:",
        "",
        "| | Rewind | one message per line (baseline, computed) |",
        "|---|---:|---:|",
        f"| Web API calls | {calls} | {r.lines:,} |",
        f"| 429s met | {r.limited} | — |",
        f"| time for every line to be visible | lag p50 {r.lag_p50:.1f} s, max {r.lag_max:.1f} s "
        f"| ≥ {naive_hours:.1f} h at 1 message/s |",
        f"| lines lost | **{r.lost}** (goal 0) | 0 |",
        "",
        f"Calls: {detail}. Lines delivered: {r.in_messages:,} first seen in messages, "
        f"{r.in_files:,} in files.",
    ]


def main(quick: bool = False) -> Result:
    return asyncio.run(measure(2_000 if quick else 20_000, 20))


if __name__ == "__main__":
    for line in table(main()):
        print(line)
