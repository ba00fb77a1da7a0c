"""How the Slack notifier paces a burst: what reaches Slack, and how fast.

A `SlackNotifier` (production pacing: one message per channel and one parent update per
`--interval`, default 1 s) against the local Slack fake. It opens an incident thread, then pushes
`--lines` (default 2,000) output lines from 2 hosts as fast as they come (or over `--spread`
seconds), with `--updates`
(default 50) parent updates spread through the burst, and flushes. Prints the messages posted,
the chat.update calls, the files uploaded, the most messages any channel got in one second, and
the time to flush.

    python bench/slack_pacing.py [--lines 2000] [--updates 50] [--interval 1.0] [--spread 0]

Prints figures; asserts nothing about them. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.config.apps_file import AppsFile, parse_apps  # noqa: E402
from bot.fronts.slack.notifier import SlackNotifier  # noqa: E402
from bot.fronts.slack.slack_api import make_client  # noqa: E402
from bot.workflow.machine import new_steps  # noqa: E402
from bot.workflow.model import Incident, StepId, StepStatus  # noqa: E402
from tests.slack_fake import Call, SlackFake  # noqa: E402

CHANNEL = "C0INCIDENT"
HOSTS = ("web1", "web2")
LINE_NO = re.compile(r"package-(\d+)==")


def apps() -> AppsFile:
    return parse_apps(
        {
            "apps": {
                "myapp": {
                    "environment": "production",
                    "repo": "/tmp/myapp.git",
                    "incident_channel": CHANNEL,
                    "notify": ["C0STAKEHOLDERS"],
                    "operators": ["U0CAROL"],
                    "approvers": ["U0ALICE"],
                    "ssh": {"transport": "local"},
                    "hosts": [{"name": h, "address": "127.0.0.1"} for h in HOSTS],
                    "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
                }
            }
        },
        "bench",
    )


def new_incident() -> Incident:
    return Incident(
        id="bench01",
        app="myapp",
        environment="production",
        requested_version="v1.4.2",
        reason="checkout returns 500",
        requested_by="U0CAROL",
        steps=new_steps(),
        facts={"deployed": "v1.5.0"},
    )


def channel_of(call: Call) -> str | None:
    """The channel a call put a visible message in (a post, or a completed file share)."""
    if call.method == "chat.postMessage":
        return str(call.args.get("channel") or "")
    if call.method == "files.completeUploadExternal":
        return str(call.args.get("channel_id") or "")
    return None


def max_per_second(times: list[float]) -> int:
    """The most events in any 1-second window."""
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def bench(lines: int, updates: int, interval: float, spread: float) -> None:
    async with SlackFake() as slack:
        client = make_client("xoxb-test", slack.api_url)
        notifier = SlackNotifier(client, apps(), min_interval=interval)
        inc = new_incident()
        inc.thread = await notifier.open_thread(inc)
        mark = slack.mark()
        inc.step(StepId.REDEPLOY).status = StepStatus.RUNNING

        every = max(lines // max(updates, 1), 1)
        sent_updates = 0
        burst_start = time.perf_counter()
        for i in range(lines):
            host = HOSTS[i % len(HOSTS)]
            line = f"[{host}] step {i // len(HOSTS):>5}: Collecting package-{i}==1.{i % 50}.0"
            await notifier.output(inc, StepId.REDEPLOY, host, line)
            if i % every == every - 1 and sent_updates < updates:
                inc = inc.model_copy(deep=True)
                inc.version += 1
                inc.facts.waiting["progress"] = f"{i + 1}/{lines} lines"
                await notifier.update_parent(inc)
                sent_updates += 1
            # Yield to the background sender as real streams do; --spread paces the lines.
            await asyncio.sleep(spread / lines if spread else 0)
        burst = time.perf_counter() - burst_start

        flush_start = time.perf_counter()
        await notifier.flush(inc)
        flushed = time.perf_counter() - flush_start
        total = time.perf_counter() - burst_start
        await notifier.aclose()

        calls = slack.calls[mark:]
        posts = [c for c in calls if c.method == "chat.postMessage"]
        chat_updates = [c for c in calls if c.method == "chat.update"]
        per_channel: dict[str, list[float]] = defaultdict(list)
        for c in slack.calls:  # the thread's parent counts too
            where = channel_of(c)
            if where:
                per_channel[where].append(c.at)
        in_messages = {int(n) for c in posts for n in LINE_NO.findall(json.dumps(c.args))}
        in_files = {int(n) for f in slack.files for n in LINE_NO.findall(f.text)}
        errors = [c for c in calls if not c.ok]

    how = f"over {spread:g} s" if spread else "in a burst"
    print(
        f"Slack pacing: {lines} output lines from {len(HOSTS)} hosts + {sent_updates} parent "
        f"updates {how}, min_interval {interval:g} s"
    )
    print(f"  lines pushed in           {burst * 1000:8.1f} ms")
    print(f"  messages posted           {len(posts):8d}   (chat.postMessage, after the parent)")
    print(f"  chat.update calls         {len(chat_updates):8d}   (parent updates coalesced)")
    print(f"  files uploaded            {len(slack.files):8d}")
    delivered = len(in_messages | in_files)
    print(f"  lines delivered           {delivered:8d}   ({len(in_messages)} in messages, "
          f"{len(in_files)} in files)")  # fmt: skip
    busiest = max(per_channel.items(), key=lambda kv: max_per_second(kv[1]))
    print(f"  max messages/s, 1 channel {max_per_second(busiest[1]):8d}   ({busiest[0]})")
    print(f"  flush() took              {flushed * 1000:8.1f} ms")
    print(f"  burst start → all sent    {total * 1000:8.1f} ms")
    print(f"  Slack calls refused       {len(errors):8d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=2000, help="output lines (max 100000)")
    parser.add_argument("--updates", type=int, default=50, help="parent updates (max 1000)")
    parser.add_argument("--interval", type=float, default=1.0, help="pacing interval, seconds")
    parser.add_argument(
        "--spread", type=float, default=0.0, help="push the lines over this many seconds (max 60)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(
        bench(
            min(max(args.lines, 1), 100_000),
            min(max(args.updates, 0), 1000),
            min(max(args.interval, 0.05), 5.0),
            min(max(args.spread, 0.0), 60.0),
        )
    )


if __name__ == "__main__":
    main()
