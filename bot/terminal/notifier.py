"""The `Notifier` port on a terminal: prints what the Slack thread would show.

Used by `python -m bot rollback` (Slack is down) and `python -m bot demo`. It renders from the
same helpers as the Slack blocks (`handlers.text`), so both fronts say the same things.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Literal, TextIO

from bot.apps_file import AppsFile
from bot.workflow.model import Gate, Incident, StepId, ThreadRef
from handlers import text as t

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class TerminalNotifier:
    """Prints the thread to `out` (stdout); uploads are saved under `files_dir`."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        apps: AppsFile | None = None,
        files_dir: Path | None = None,
        width: int = 88,
    ) -> None:
        self.stream = out if out is not None else sys.stdout
        self.apps = apps
        self.files_dir = files_dir
        self.width = width
        self.saved: list[Path] = []
        self._last_parent: dict[str, str] = {}
        self._gates: dict[str, Gate] = {}

    # ---- printing ------------------------------------------------------------------------

    def _print(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _reply(self, text: str) -> None:
        lines = t.to_terminal(text).splitlines() or [""]
        self._print(f"  ↳ {lines[0]}")
        for line in lines[1:]:
            self._print(f"    {line}")

    def parent_text(self, incident: Incident) -> str:
        """The parent message as a box: header, facts, checklist, criteria, monitor, outcome."""
        lines = [t.header_text(incident), ""]
        lines.extend(f"{name}: {value}" for name, value in t.field_pairs(incident))
        lines += ["", "Runbook checklist", *t.checklist_lines(incident), ""]
        lines.append("Completion criteria — do NOT mark complete until all are met")
        lines.extend(t.criteria_lines(incident))
        if note := t.unmet_note(incident):
            lines.append(note)
        if monitor := t.monitor_lines(incident.facts):
            lines += ["", "Monitor", *monitor]
        if outcome := t.outcome_line(incident):
            lines += ["", outcome]
        rule = "─" * self.width
        body = [f"│ {t.to_terminal(line).replace('`', '')}" for line in lines]
        return "\n".join([f"┌{rule}", *body, f"└{rule}"])

    # ---- the Notifier port ---------------------------------------------------------------

    async def open_thread(self, incident: Incident) -> ThreadRef:
        app = self.apps.app(incident.app) if self.apps else None
        channel = app.incident_channel if app else "terminal"
        await self.update_parent(incident)
        return ThreadRef(channel=channel, ts=incident.id, permalink="")

    async def update_parent(self, incident: Incident) -> None:
        text = self.parent_text(incident)
        if self._last_parent.get(incident.id) == text:
            return
        self._last_parent[incident.id] = text
        self._print()
        self._print(text)

    async def say(self, incident: Incident, text: str) -> None:
        self._reply(text)

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        if line.strip():
            self._print(f"  [{host}] {line.rstrip()}")

    async def flush(self, incident: Incident) -> None:
        self.stream.flush()

    async def ask(self, incident: Incident, gate: Gate) -> None:
        view = t.gate_view(incident, gate)
        self._gates[gate.token] = gate
        self._reply(view.question)
        for line in view.facts:
            self._print(f"    {t.to_terminal(line)}")
        if view.warning:
            self._print(f"    {t.to_terminal(view.warning)}")
        for label, code, keep in view.code:
            self._print(f"    {t.to_terminal(label)}")
            body = t.truncate(code, 3_000) if keep == "head" else t.truncate_tail(code, 3_000)
            for line in body.splitlines():
                self._print(f"      {line}")
        self._print("    " + " ".join(f"[{b.label}]" for b in view.buttons))

    async def resolve_gate(self, incident: Incident, token: str, text: str) -> None:
        self._gates.pop(token, None)
        self._reply(t.answer_text(text, incident.updated_at))

    async def stakeholders(self, incident: Incident, phase: Literal["start", "end"]) -> list[str]:
        app = self.apps.app(incident.app) if self.apps else None
        channels = list(app.notify) if app else []
        body = t.to_terminal(t.notice_text(incident, phase, app.mention if app else ()))
        for channel in channels:
            self._print(f"#{channel}: {body}")
        return channels

    async def upload(
        self, incident: Incident, filename: str, content: str, title: str, comment: str = ""
    ) -> None:
        count = len(content.splitlines())
        where = ""
        if self.files_dir is not None:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            path = self.files_dir / (_SAFE_NAME.sub("_", filename).strip("._") or "file.txt")
            path.write_text(content)
            self.saved.append(path)
            where = f" → {path}"
        self._reply(f"📎 {filename} ({count} lines){where}" + (f" — {comment}" if comment else ""))

    async def alert(self, incident: Incident, text: str) -> None:
        self._reply(f"🚨 {text}")
        app = self.apps.app(incident.app) if self.apps else None
        for channel in app.notify if app else []:
            self._print(f"#{channel}: 🚨 {incident.app} (incident {incident.id}): {text}")
