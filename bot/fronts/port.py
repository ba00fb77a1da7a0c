"""What a front must offer, as errbot's backends do (`errbot/backends/base.py`).

A front is where people meet an incident: Slack (`bot.fronts.slack`) and the terminal
(`bot.fronts.terminal`) are its two implementations. Both take a command to `Dispatcher`
(`bot.fronts.dispatch`), so both run the same checks; each shows the thread and the `Reply` in
its own words.

`Chat` is the chat service as seen from somewhere else than its own front: the terminal, which
runs while Slack may be down, posts the stakeholder notices and learns people's names through
it, and `serve`/`worker` post the notices the terminal had to keep. Slack's adapter implements it
(`bot.fronts.slack.chat.SlackChat`); nothing outside that adapter speaks Slack's Web API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from bot.fronts.dispatch import Reply
from bot.ports import Notifier
from bot.workflow.messages import Message


class Front(Notifier, Protocol):
    """The incident's thread (post, update, reply, ask a question with choices, upload: the
    `Notifier` port), people by the name the front shows, and a command's reply."""

    def person(self, user: str) -> str:
        """How this front names a person: a mention in Slack, `@carol` at a terminal."""
        ...

    def render(self, reply: Reply) -> str:
        """A command's answer (`Dispatcher.run`) in this front's words and markup."""
        ...


class ChatUnavailable(Exception):
    """The chat service did not take a post (down, or it refused); the text says why."""


class Chat(Protocol):
    """A chat service reached from outside its own front (Slack, while the terminal runs)."""

    @property
    def reachable(self) -> bool:
        """It answered when this process connected; when not, nothing is posted."""
        ...

    def render(self, message: Message, ping: Sequence[str] = ()) -> str:
        """`message` in the chat's markup, after `ping` (mentions from the apps file)."""
        ...

    async def post(self, channel: str, text: str) -> None:
        """Post `text` (from `render`) to `channel`; raises `ChatUnavailable` if not posted."""
        ...

    async def names(self, ids: Iterable[str]) -> dict[str, str]:
        """The names the chat knows for these user ids (those it does not know are left out)."""
        ...


class NoChat:
    """No chat service configured: nothing is posted, nobody is named."""

    reachable = False

    def render(self, message: Message, ping: Sequence[str] = ()) -> str:
        from bot.workflow.render_text import plain

        return " ".join([*ping, plain(message)]) if ping else plain(message)

    async def post(self, channel: str, text: str) -> None:
        raise ChatUnavailable("no chat service is configured")

    async def names(self, ids: Iterable[str]) -> dict[str, str]:
        return {}
