"""How the terminal shows the thread (the demo and `rewind rollback`): live, or a compact log.

* On a terminal: the parent message is one panel redrawn in place (rich `Live`), with the
  thread's latest replies below it; a question stops the live view so the prompt stays put.
* Off a terminal (CI, a pipe): one line per change of the checklist, the first line of each
  reply, nothing wider than 80 columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from rich.cells import cell_len, set_cell_size
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from bot.config.apps_file import AppsFile
from bot.fronts.terminal.notifier import TerminalNotifier, numbered
from bot.fronts.terminal.people import People
from bot.views import incident as views
from bot.workflow.model import Gate, Incident, StepId, StepStatus
from bot.workflow.render_text import WIDTH, wrap, wrapped

if TYPE_CHECKING:
    from bot.fronts.port import Chat
    from bot.ports import HeldNotices


def fit(line: str, width: int = WIDTH) -> str:
    """`line` cut to `width` terminal columns (emoji count two), ending in … when cut."""
    line = line.rstrip()
    if cell_len(line) <= width:
        return line
    return set_cell_size(line, width - 1).rstrip() + "…"


class CompactNotifier(TerminalNotifier):
    """One line per change: the log a pipe or CI shows. For the demo (`stand_in`) notices are
    printed as Slack would show them; for `rollback` they are posted or kept, as on a terminal,
    and the files are saved."""

    def __init__(
        self,
        out: TextIO,
        *,
        apps: AppsFile,
        stand_in: bool = True,
        people: People | None = None,
        chat: Chat | None = None,
        hold_in: HeldNotices | None = None,
        files_dir: Path | None = None,
    ) -> None:
        super().__init__(out, apps=apps, stand_in=stand_in, width=WIDTH, people=people,
                         chat=chat, hold_in=hold_in, files_dir=files_dir)  # fmt: skip
        self._steps: dict[StepId, str] = {}
        self._headed: set[str] = set()
        self._ended: set[str] = set()
        self.output_lines = 0

    def _print(self, text: str = "") -> None:
        self.stream.write(wrapped(text, self.width) + "\n")
        self.stream.flush()

    def _reply(self, text: str) -> None:
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        self._print(f"  ↳ {first}")

    async def update_parent(self, incident: Incident) -> None:
        if incident.id not in self._headed:
            self._headed.add(incident.id)
            self._print(
                f"{views.title(incident)} ({incident.environment}), incident {incident.id}, "
                f"asked by {self.people.name(incident.requested_by)}"
            )
        for rec in incident.steps:
            if rec.status is StepStatus.PENDING:
                continue
            line = self.show(views.step_line(incident, rec))
            if self._steps.get(rec.id) != line:
                self._steps[rec.id] = line
                self._print(f"  {line}")
        if not incident.status.open and incident.id not in self._ended:
            self._ended.add(incident.id)
            if note := views.unmet_note(incident):
                self._print(f"  {note}")

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        self.output_lines += 1  # the hosts' output is in the report; here it would drown all

    async def ask(self, incident: Incident, gate: Gate) -> None:
        view = views.gate_view(incident, gate)
        self._reply(self.show(view.question))
        choices = numbered(view.buttons)
        line = "    "
        for choice in choices:
            if cell_len(line) + cell_len(choice) + 2 > WIDTH and line.strip():
                self._print(line)
                line = "    "
            line += choice + "  "
        self._print(line)

    async def upload(
        self,
        incident: Incident,
        filename: str,
        content: str,
        title: str,
        comment: str = "",
        *,
        whole_group: bool = False,
    ) -> None:
        if not self.stand_in:
            await super().upload(
                incident, filename, content, title, comment, whole_group=whole_group
            )
            return
        self._reply(f"📎 {filename} ({len(content.splitlines())} lines)")  # the demo keeps none

    async def stakeholders(
        self,
        incident: Incident,
        phase: Literal["start", "end"],
        channels: Sequence[str] | None = None,
        members: Sequence[Incident] = (),
    ) -> list[str]:
        if not self.stand_in:
            return await super().stakeholders(incident, phase, channels, members)
        app = self.apps.app(incident.app) if self.apps else None
        targets = list(app.notify if channels is None else channels) if app else []
        for channel in targets:
            self._print(f"  #{channel} told: {self.show(views.notice(incident, phase, members))}")
        return targets


class LiveNotifier(TerminalNotifier):
    """The parent message as one panel redrawn in place, the latest replies below it."""

    def __init__(self, out: TextIO, *, apps: AppsFile, interactive: bool) -> None:
        super().__init__(out, apps=apps, stand_in=True)
        self.console = Console(file=out, force_terminal=True)
        self.interactive = interactive
        self._live: Live | None = None
        self._parent: Incident | None = None
        self._thread: list[str] = []

    # the parent: short enough to stay on one screen
    def _panel(self) -> Panel:
        inc = self._parent
        if inc is None:
            return Panel("")
        width = max(self.console.width - 4, 40)
        lines = [f"{views.title(inc)} · {inc.environment} · incident {inc.id}"]
        lines += wrap(f"Reason: {inc.reason}", width)
        lines += wrap(views.state_words(inc), width)
        lines.append("")
        lines += [fit(self.show(views.step_line(inc, rec)), width) for rec in inc.steps]
        met = sum(1 for ok in inc.criteria.values() if ok)
        lines += ["", f"Completion criteria met: {met} of {len(views.criteria_lines(inc))}"]
        lines += [fit(self.show(m), width) for m in views.monitor_lines(inc.facts.monitor)[:3]]
        if outcome := views.outcome_line(inc):
            lines += ["", *wrap(self.show(outcome), width)]
        return Panel(Text("\n".join(lines)), title=views.header_text(inc), title_align="left")

    def _view(self) -> Group:
        panel = self._panel()
        room = max(self.console.height - len(panel.renderable.plain.splitlines()) - 3, 3)  # type: ignore[union-attr]
        width = max(self.console.width - 1, 40)
        tail = [part for line in self._thread[-room:] for part in wrap(line, width)][-room:]
        return Group(panel, Text("\n".join(tail)))

    def _refresh(self) -> None:
        # Redrawn at most 8 times a second: a burst of output is one redraw, not hundreds.
        if self._live is None:
            self._live = Live(self._view(), console=self.console, refresh_per_second=8,
                              redirect_stdout=False, redirect_stderr=False)  # fmt: skip
            self._live.start()
        self._live.update(self._view())

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _print(self, text: str = "") -> None:
        self._thread.extend(text.splitlines() or [""])
        self._refresh()

    async def update_parent(self, incident: Incident) -> None:
        self._parent = incident
        self._refresh()

    async def ask(self, incident: Incident, gate: Gate) -> None:
        await super().ask(incident, gate)
        if self.interactive:  # the prompt needs the screen below a still picture
            self.stop()
            self._thread.clear()
