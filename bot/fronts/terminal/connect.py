"""The terminal's notifier as this terminal needs it: the live thread on a terminal, the
compact log through a pipe (CI), Slack for notices and names when it answers."""

from __future__ import annotations

from typing import TextIO

from bot.config.apps_file import AppsFile
from bot.config.settings import Settings
from bot.fronts.port import Chat
from bot.fronts.terminal.notifier import TerminalNotifier
from bot.fronts.terminal.people import People
from bot.fronts.terminal.views import CompactNotifier
from bot.ports import HeldNotices, Store


async def connect_terminal_notifier(
    settings: Settings,
    apps: AppsFile,
    store: Store,
    out: TextIO,
    chat: Chat,
    held: HeldNotices | None = None,
) -> tuple[TerminalNotifier, People]:
    """The terminal's notifier: `chat` (Slack) for notices and names when it answers, else
    notices kept in the store and names from the apps file."""

    people = People.from_apps_file(apps.people)
    if not chat.reachable:
        print("⚠ Slack does not answer: stakeholder notices will be kept, names from the apps "
              "file.", file=out)  # fmt: skip
    else:
        ids = {i for a in apps.apps.values() for i in (*a.operators, *a.approvers)}
        people.learn(await chat.names(i for i in ids if i not in people.names))
    files = settings.workspace / "files"
    if out.isatty():  # else a pipe, CI: the panel once per change
        notifier = TerminalNotifier(out=out, apps=apps, files_dir=files, people=people,
                                    chat=chat, hold_in=held)  # fmt: skip
        return notifier, people
    compact = CompactNotifier(out, apps=apps, stand_in=False, people=people, chat=chat,
                              hold_in=held, files_dir=files)  # fmt: skip
    return compact, people
