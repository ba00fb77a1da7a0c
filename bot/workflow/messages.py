"""What to tell people, without saying how a front shows it: a tiny message model.

The core and the steps build a `Message` (lines of inline pieces, lists, code blocks); each front
renders it in its own terms — Slack mrkdwn (`bot/fronts/slack/mrkdwn.py`), the terminal and
Markdown reports (`render_text.py`). A user is a `Mention(user_id)`: Slack pings them, the terminal
and the report show their name.

A `str` piece is words, shown literally by every front (Slack escapes `&`, `<`, `>` in it). Words
may quote a command, a version or a path in backticks: Slack and Markdown show it as code, and a
terminal shows the backticks, which read as quotes there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    WAIT = "wait"


@dataclass(frozen=True)
class Mention:
    user_id: str  # U… or a user group S…


@dataclass(frozen=True)
class ChannelRef:
    channel_id: str


@dataclass(frozen=True)
class Emphasis:
    text: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    url: str
    label: str


@dataclass(frozen=True)
class Mark:
    status: Status


Inline = str | Mention | ChannelRef | Emphasis | Code | Link | Mark


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[Paragraph, ...]


@dataclass(frozen=True)
class CodeBlock:
    text: str


Block = Paragraph | Bullets | CodeBlock


@dataclass(frozen=True)
class Message:
    blocks: tuple[Block, ...] = field(default_factory=tuple)
    # Said of a release group as a whole (its one decision, its order): in its one thread it is
    # named after no single app (`bot.workflow.said.named`).
    whole_group: bool = False


def para(*parts: Inline) -> Paragraph:
    return Paragraph(tuple(parts))


def message(*blocks: Block | Inline) -> Message:
    """A message from blocks; inline pieces in a row become one paragraph."""
    out: list[Block] = []
    run: list[Inline] = []
    for b in blocks:
        if isinstance(b, Paragraph | Bullets | CodeBlock):
            if run:
                out.append(Paragraph(tuple(run)))
                run = []
            out.append(b)
        else:
            run.append(b)
    if run:
        out.append(Paragraph(tuple(run)))
    return Message(tuple(out))


def of_whole_group(msg: Message) -> Message:
    return Message(msg.blocks, whole_group=True)


def words(text: str) -> Message:
    """Plain words as a message (a refusal, a note): no mention, no emphasis."""
    return message(text)


def joined(items: Sequence[Inline], sep: str = ", ") -> tuple[Inline, ...]:
    """`a, b, c` as inline pieces (e.g. channel references), for `message(*joined(...))`."""
    out: list[Inline] = []
    for i, item in enumerate(items):
        if i:
            out.append(sep)
        out.append(item)
    return tuple(out)


def bullets(items: Sequence[Paragraph | str]) -> Bullets:
    return Bullets(tuple(i if isinstance(i, Paragraph) else para(i) for i in items))
