"""Step output in the thread: the lines buffered per (step, host) as code blocks in one message,
or, when they do not fit a message, as a file with the last lines in its comment — never
dropped."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.fronts.slack import blocks as render
from bot.fronts.slack import text as t
from bot.fronts.slack.slack_calls import COMMENT_TAIL, SlackCalls
from bot.fronts.slack.thread_state import IncidentState, Lines, Threads
from bot.workflow.steps import SPECS

log = logging.getLogger(__name__)


class OutputPoster:
    """Posts a batch of buffered output lines into an incident's thread."""

    def __init__(self, calls: SlackCalls, threads: Threads, max_output_blocks: int) -> None:
        self.calls = calls
        self.threads = threads
        self.max_output_blocks = max_output_blocks

    async def post(self, state: IncidentState, taken: Lines) -> None:
        if not taken:
            return
        where = self.threads.where(state)
        if where is None:
            count = sum(len(lines) for lines in taken.values())
            log.error("incident %s: %d output lines with nowhere to go", state.incident.id, count)
            return
        channel, thread_ts = where
        groups = [(SPECS[step].title, host, lines) for (step, host), lines in taken.items()]
        hosts = ", ".join(dict.fromkeys(host for _, host, _ in groups))
        count = sum(len(lines) for _, _, lines in groups)
        content = output_file(groups)
        blocks = render.output(groups, self.max_output_blocks)
        state.files += 1
        incident = state.incident
        filename = f"{incident.app}-{incident.id}-output-{state.files}.log"
        if blocks is not None:
            text = f"Output from {hosts} ({count} line{'s' if count != 1 else ''})"
            await self.calls.post(channel, text, blocks, thread_ts, file=(filename, content))
            return
        titles = ", ".join(dict.fromkeys(title for title, _, _ in groups))
        tail = "\n".join(groups[-1][2][-COMMENT_TAIL:])
        comment = (
            f"📎 Output of {titles} on {hosts}: {count} lines, too long for a message — "
            f"the whole output is in the file. Last lines from `{groups[-1][1]}`:\n"
            + t.code_block(t.escape(tail), 2_000, keep="tail")
        )
        title = f"Output of {titles} ({hosts})"
        await self.calls.upload(channel, thread_ts, filename, content, title, comment)


def output_file(groups: Sequence[tuple[str, str, list[str]]]) -> str:
    out: list[str] = []
    for title, host, lines in groups:
        out.append(f"## {host} · {title}")
        out.extend(lines)
        out.append("")
    return "\n".join(out)
