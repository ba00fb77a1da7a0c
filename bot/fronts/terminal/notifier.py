"""The `Notifier` port on a terminal: prints what the Slack thread would show.

Used by `python -m bot rollback` (Slack is down) and `python -m bot demo`. It renders the same
front-neutral views as the Slack blocks (`bot.views.incident`), so both fronts say the same
things; stakeholder notices reach Slack through the `Chat` port (`bot.fronts.port`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from bot.config.apps_file import AppsFile
from bot.fronts.dispatch import Reply
from bot.fronts.port import Chat, ChatUnavailable
from bot.fronts.terminal.people import People
from bot.views import incident as views
from bot.workflow import render_text, said
from bot.workflow.facts import AnswerFact
from bot.workflow.messages import Message, Paragraph
from bot.workflow.model import Gate, Incident, StepId, ThreadRef

if TYPE_CHECKING:
    from bot.ports import HeldNotices

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def numbered(buttons: Sequence[views.ButtonSpec]) -> list[str]:
    """`1) Roll back to v1.4.2 (revert merges) (recommended)`: the buttons' own words, and which
    of two ways of the same answer Slack would show as the primary one."""
    out = []
    for i, b in enumerate(buttons, 1):
        twin = sum(1 for other in buttons if other.choice == b.choice) > 1
        mark = " (recommended)" if twin and b.style == "primary" else ""
        out.append(f"{i}) {b.label}{mark}")
    return out


class TerminalNotifier:
    """Prints the thread to `out` (stdout); uploads are saved under `files_dir`."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        apps: AppsFile | None = None,
        files_dir: Path | None = None,
        width: int = 88,
        people: People | None = None,
        chat: Chat | None = None,
        hold_in: HeldNotices | None = None,
        stand_in: bool = False,
    ) -> None:
        self.stream = out if out is not None else sys.stdout
        self.apps = apps
        self.people = people or People.from_apps_file(apps.people if apps else {})
        # Stakeholder notices: posted through `chat` (Slack) when it answers, else kept in
        # `hold_in` (Redis); `stand_in` (the demo) prints them instead.
        self.chat = chat
        self.hold_in = hold_in
        self.stand_in = stand_in
        self._held: dict[str, list[str]] = {}
        self.files_dir = files_dir
        self.width = width
        self.saved: list[Path] = []
        self._last_parent: dict[str, str] = {}
        self._gates: dict[str, Gate] = {}
        self._told: dict[str, tuple[str, list[str]]] = {}  # incident -> (app, channels told)

    # ---- printing ------------------------------------------------------------------------

    def _print(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def show(self, piece: Paragraph | Message) -> str:
        """`bot.views.incident` or a message in terminal words: names, not ids; no markup."""
        msg = piece if isinstance(piece, Message) else Message((piece,))
        return render_text.plain(msg, self.people.bare).replace("`", "")

    def plain(self, text: str) -> str:
        """Words with the apps file's mentions (`mention:`), by name."""
        return self.people.plain(text).replace("`", "")

    def notice_words(self, notice: Message, ping: Sequence[str]) -> str:
        """A stakeholder notice as the terminal shows it: names, no markup."""
        return " ".join([*(self.plain(p) for p in ping if p), self.show(notice)])

    # ---- the rest of the Front port (bot.fronts.port) -----------------------------------

    def person(self, user: str) -> str:
        return self.people.name(user)

    def render(self, reply: Reply) -> str:
        from bot.fronts.terminal.replies import reply_words

        return reply_words(reply, self.show)

    def _reply(self, text: str) -> None:
        lines = text.splitlines() or [""]
        self._print(f"  ↳ {lines[0]}")
        for line in lines[1:]:
            self._print(f"    {line}")

    def parent_text(self, incident: Incident) -> str:
        """The parent message as a box: header, facts, checklist, criteria, monitor, outcome."""
        show = self.show
        lines = [views.header_text(incident), ""]
        lines.extend(f"{name}: {show(value)}" for name, value in views.field_pairs(incident))
        lines += ["", "Runbook checklist", *map(show, views.checklist_lines(incident)), ""]
        lines.append("Completion criteria — do NOT mark complete until all are met")
        lines.extend(map(show, views.criteria_lines(incident)))
        if note := views.unmet_note(incident):
            lines.append(note)
        if monitor := views.monitor_lines(incident.facts.monitor):
            lines += ["", "Monitor", *map(show, monitor)]
        if outcome := views.outcome_line(incident):
            lines += ["", show(outcome)]
        rule = "─" * self.width
        body = [f"│ {line}" for line in lines]
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

    async def say(self, incident: Incident, message: Message) -> None:
        self._reply(self.show(message))

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        if line.strip():
            self._print(f"  [{host}] {line.rstrip()}")

    async def flush(self, incident: Incident) -> None:
        self.stream.flush()

    async def ask(self, incident: Incident, gate: Gate) -> None:
        view = views.gate_view(incident, gate)
        self._gates[gate.token] = gate
        self._reply(self.show(view.question))
        for line in view.facts:
            self._print(f"    {self.show(line)}")
        if view.warning:
            self._print(f"    {self.show(view.warning)}")
        for label, code, keep in view.code:
            self._print(f"    {self.show(label)}")
            body = (
                views.truncate(code, 3_000) if keep == "head" else views.truncate_tail(code, 3_000)
            )
            for code_line in body.splitlines():
                self._print(f"      {code_line}")
        self._print("    " + "  ".join(numbered(view.buttons)))

    async def resolve_gate(self, incident: Incident, token: str, answer: AnswerFact) -> None:
        self._gates.pop(token, None)
        # In a release group's one log several apps are asked: the answer says which (as the
        # Slack thread's gate message, which it replaces there, does).
        self._reply(self.show(said.named(incident, said.answered(answer, incident.updated_at))))

    async def held_notices(self, incident: Incident) -> list[str]:
        return list(self._held.get(incident.id, []))

    async def stakeholders(
        self,
        incident: Incident,
        phase: Literal["start", "end"],
        channels: Sequence[str] | None = None,
        members: Sequence[Incident] = (),
    ) -> list[str]:
        app = self.apps.app(incident.app) if self.apps else None
        targets = list(app.notify if channels is None else channels) if app else []
        if app is None or not targets:
            return []
        notice = Message((views.notice(incident, phase, members),))
        words = self.notice_words(notice, app.mention)
        self._told[incident.id] = (incident.app, targets if phase == "start" else [])
        if self.stand_in:
            for channel in targets:
                self._print(f"#{channel}: {words}")
            return targets
        # What Slack is sent (or keeps for later): the chat's own markup, pings first.
        text = self.chat.render(notice, app.mention) if self.chat else words
        told: list[str] = []
        for channel in targets:
            if await self._post(channel, text):
                told.append(channel)
                self._print(f"📣 Told #{channel}: {words}")
        missing = [c for c in targets if c not in told]
        if missing:
            await self._hold(incident, missing, text, words)
        return told

    async def stopped(self, why: str) -> None:
        """The incident stopped without its end (its store went away): whoever heard of its
        start hears that it stopped, and why. Redis is gone, so nothing can be kept for later."""
        for incident_id, (app, channels) in self._told.items():
            text = (
                f"⏹ Rollback of {app} (incident {incident_id}) stopped before its end: {why}. "
                "The person at the terminal is checking the hosts; no step runs meanwhile."
            )
            for channel in channels:
                if await self._post(channel, text):
                    self._print(f"📣 Told #{channel}: {text}")
                else:
                    self._print(f"⚠ #{channel} NOT told (Slack unreachable). Tell them: {text}")
        self._told.clear()

    async def _post(self, channel: str, text: str) -> bool:
        if self.chat is None or not self.chat.reachable:
            return False
        try:
            await self.chat.post(channel, text)
        except ChatUnavailable as exc:
            self._print(f"⚠ Slack refused the notice to #{channel}: {exc}")
            return False
        return True

    async def _hold(self, incident: Incident, channels: list[str], text: str, words: str) -> None:
        where = ", ".join(f"#{c}" for c in channels)
        if self.hold_in is None:
            self._print(
                f"⚠ Slack unreachable and Redis too: {where} NOT told, and the notice cannot be "
                f"kept. Tell them yourself: {words}"
            )
            return
        from bot.ports import HeldNotice

        at = datetime.now(UTC).isoformat()
        for channel in channels:
            await self.hold_in.hold(HeldNotice(incident.id, channel, text, at))
        self._held.setdefault(incident.id, []).extend(channels)
        self._print(
            f"⚠ Slack unreachable: {where} NOT told yet. The notice is kept in Redis; the next "
            "`serve` or `worker` that reaches Slack posts it, with what happened since."
        )

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
        count = len(content.splitlines())
        where = ""
        if self.files_dir is not None:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            path = self.files_dir / (_SAFE_NAME.sub("_", filename).strip("._") or "file.txt")
            path.write_text(content)
            self.saved.append(path)
            where = f" → {path}"
        self._reply(
            f"📎 {filename} ({count} lines){where}"
            + (f" — {comment.replace('`', '')}" if comment else "")
        )

    async def alert(self, incident: Incident, message: Message) -> None:
        text = self.show(message)
        self._reply(f"🚨 {text}")
        app = self.apps.app(incident.app) if self.apps else None
        for channel in app.notify if app else []:
            body = f"🚨 {incident.app} (incident {incident.id}): {text}"
            if self.stand_in:
                self._print(f"#{channel}: {self.plain(body)}")
            elif not await self._post(channel, body):
                self._print(f"⚠ Not sent to #{channel}: Slack unreachable.")
