"""The terminal front's wiring: an engine that runs the steps in this process (SSH or local
hosts, git), and the chat the settings name (`bot.app.chat`)."""

from __future__ import annotations

import functools
from pathlib import Path

from bot.app.chat import chat_for
from bot.config.apps_file import AppsFile
from bot.config.settings import Settings
from bot.fronts.terminal.front import InlineQueue, Wiring
from bot.incidents.engine import Engine
from bot.ports import Notifier, Store
from runners.git import GitRepos
from runners.local import runner_for


def build_terminal_engine(
    apps: AppsFile, store: Store, notifier: Notifier, workspace: Path
) -> tuple[Engine, InlineQueue]:
    queue = InlineQueue()
    engine = Engine(
        apps=apps,
        store=store,
        notifier=notifier,
        queue=queue,
        workspace=workspace,
        runner_factory=runner_for,
        repos=GitRepos(workspace),
        worker_id="terminal",
    )
    queue.engine = engine
    return engine, queue


def terminal_wiring(settings: Settings) -> Wiring:
    return Wiring(build_terminal_engine, functools.partial(chat_for, settings))
