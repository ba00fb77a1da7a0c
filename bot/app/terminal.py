"""The terminal front's wiring: a step runner that runs the steps in this process (SSH or local
hosts, git), its planner, the store `REDIS_URL` names, and the chat the settings name
(`bot.app.chat`)."""

from __future__ import annotations

import functools
from pathlib import Path

from bot.app.chat import chat_for
from bot.config.apps_file import AppsFile
from bot.config.settings import Settings
from bot.fronts.terminal.front import CtrlC, InlineQueue, Wiring
from bot.incidents.host_runners import HostRunners, open_in
from bot.incidents.left_copies import LeftCopies
from bot.incidents.service import IncidentService
from bot.incidents.step_runner import StepRunner
from bot.plan.build import Planner
from bot.ports import Notifier, Store
from bot.store.stores import StoreOpener
from runners.git import GitRepos
from runners.local import runner_for


def build_terminal_runner(
    apps: AppsFile,
    store: Store,
    notifier: Notifier,
    workspace: Path,
    ctrl_c: CtrlC | None = None,
) -> tuple[StepRunner, InlineQueue]:
    """The step runner of this process, its incident service (`.incidents`), and the queue it
    drains in order; `ctrl_c` is asked at every fence."""
    queue = InlineQueue()
    runners = HostRunners(runner_for, still_open=open_in(store))
    incidents = IncidentService(
        apps=apps,
        store=store,
        notifier=notifier,
        queue=queue,
        repos=GitRepos(workspace),
        ended=runners.close,
        left=LeftCopies(apps, runner_for).remove,
    )
    steps = StepRunner(
        incidents,
        runners=runners,
        workspace=workspace,
        worker_id="terminal",
        pause_point=ctrl_c.at_fence if ctrl_c is not None else None,
    )
    return steps, queue


def terminal_planner(incidents: IncidentService, workspace: Path) -> Planner:
    return Planner(incidents, runner_for, workspace)


def terminal_wiring(settings: Settings) -> Wiring:
    return Wiring(
        build_terminal_runner,
        terminal_planner,
        StoreOpener(settings.redis_url),
        functools.partial(chat_for, settings),
    )
