"""Where an incident's messages enter its thread: in a release group's one thread, each names
the app it is about (`bot.workflow.said.named`), whoever says it (a step, the monitor, the
machine, the step runner, the ending). The group's questions are named where they are drawn
(`bot.views.incident.gate_view`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from bot.ports import Notifier
from bot.workflow import said
from bot.workflow.facts import AnswerFact
from bot.workflow.messages import Message
from bot.workflow.model import Gate, Incident, StepId, ThreadRef


class NamedMembers:
    """A `Notifier` whose messages (`say`, `alert`, a file's comment) name a group member's
    app; the rest passes as is."""

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner

    async def say(self, incident: Incident, message: Message) -> None:
        await self.inner.say(incident, said.named(incident, message))

    async def alert(self, incident: Incident, message: Message) -> None:
        await self.inner.alert(incident, said.named(incident, message))

    async def open_thread(self, incident: Incident) -> ThreadRef:
        return await self.inner.open_thread(incident)

    async def update_parent(self, incident: Incident) -> None:
        await self.inner.update_parent(incident)

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        await self.inner.output(incident, step, host, line)

    async def flush(self, incident: Incident) -> None:
        await self.inner.flush(incident)

    async def ask(self, incident: Incident, gate: Gate) -> None:
        await self.inner.ask(incident, gate)

    async def stakeholders(
        self,
        incident: Incident,
        phase: Literal["start", "end"],
        channels: Sequence[str] | None = None,
        members: Sequence[Incident] = (),
    ) -> list[str]:
        return await self.inner.stakeholders(incident, phase, channels, members)

    async def held_notices(self, incident: Incident) -> list[str]:
        return await self.inner.held_notices(incident)

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
        if not whole_group:
            comment = said.named_file(incident, title, comment)
        await self.inner.upload(incident, filename, content, title, comment)

    async def resolve_gate(self, incident: Incident, token: str, answer: AnswerFact) -> None:
        await self.inner.resolve_gate(incident, token, answer)


def named_members(notifier: Notifier) -> NamedMembers:
    """`notifier`, naming group members (once: a notifier already naming them is kept)."""
    return notifier if isinstance(notifier, NamedMembers) else NamedMembers(notifier)
