"""The terminal front: the same workflow when Slack itself is down. Approvals at the prompt.

Safe for a person under stress: questions offer numbered choices in the buttons' own words;
Enter or an unknown answer asks again (nothing is ever picked for you); Ctrl-C asks before
aborting, and a second Ctrl-C leaves the incident paused, saying how to resume it.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, cast

from bot.config.apps_file import AppsFile
from bot.config.settings import Settings
from bot.fronts.command import Command
from bot.fronts.dispatch import Dispatcher, GroupPlanMade, Opened, PlanMade, check_pins
from bot.fronts.port import Chat, NoChat
from bot.fronts.terminal.console import Console, InputClosed, Interrupted
from bot.fronts.terminal.notifier import TerminalNotifier, numbered
from bot.fronts.terminal.people import People
from bot.fronts.terminal.replies import reply_message
from bot.incidents.service import IncidentService, OpenRequest
from bot.incidents.step_runner import StepRunner
from bot.plan.build import Planner
from bot.ports import HeldNotices, Store, StoreOpener, Stores
from bot.telemetry.redaction import redact
from bot.views import incident as views
from bot.workflow import said
from bot.workflow.errors import StepError, StoreError, StoreUnavailable, UserFacingError
from bot.workflow.machine import Answer
from bot.workflow.model import Gate, GateKind, Incident, StepId
from bot.workflow.policy import Actor
from bot.workflow.render_text import WrappedOut, plain
from bot.workflow.version import Version

EXIT_INTERRUPTED = 130  # what shells expect after Ctrl-C


@dataclass(frozen=True)
class Reply:
    choice: str  # roll_back | fix_forward | approve | restore | retry | abort
    option: str
    actor: Actor


class Paused(Exception):
    """The person asked to stop here; the incident stays as it is, waiting."""


Chooser = Callable[[Incident, Gate], Awaitable[Reply]]


class InlineQueue:
    """`StepQueue` that runs steps in this process, in order, when drained."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, StepId, int]] = []

    async def enqueue_step(self, incident_id: str, step: StepId, attempt: int) -> None:
        self.pending.append((incident_id, step, attempt))

    async def hand_over(self, incident_id: str, step: StepId, attempt: int) -> None:
        self.pending.append((incident_id, step, attempt))

    async def drain(self, steps: StepRunner) -> None:
        while self.pending:
            await steps.run_step(*self.pending.pop(0))


def terminal_actor(apps: AppsFile, name: str) -> Actor:
    """Whoever has a shell on the bot's machine may operate; approvals name an approver."""
    everyone = {g for app in apps.apps.values() for g in (*app.operators, *app.approvers)}
    return Actor(user=name, groups=frozenset(everyone))


def where_am_i() -> str:
    """`user@host` of this terminal, for the audit trail."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _approving(gate: Gate, choice: str) -> bool:
    return choice in {"approve", "restore"} or (
        choice == "retry" and gate.step is StepId.DB_ROLLBACK
    )


def auto_chooser(apps: AppsFile, requester: Actor) -> Chooser:
    """`--yes` (never in production): roll back and approve; a failed step ends the run."""

    async def choose(incident: Incident, gate: Gate) -> Reply:
        if gate.kind is GateKind.DECISION:
            return Reply("roll_back", "", requester)
        if gate.kind is GateKind.RETRY:
            return Reply("abort", "", requester)
        if gate.kind is GateKind.APPROVE_DB and incident.facts.db.recommended == "restore":
            return Reply("restore", incident.facts.db.restore_default, requester)
        return Reply("approve", "", requester)

    return choose


class Prompter:
    """Asks the gate's question with numbered choices and reads a valid answer."""

    def __init__(self, console: Console, apps: AppsFile, requester: Actor, people: People) -> None:
        self.console = console
        self.apps = apps
        self.requester = requester
        self.people = people

    async def __call__(self, incident: Incident, gate: Gate) -> Reply:
        if self.console.interrupts >= 2:  # pressed twice while the last step ran
            raise Paused
        while True:
            try:
                return await self._ask(incident, gate)
            except Interrupted:
                if await self._confirm_abort():
                    return Reply("abort", "", self.requester)

    async def _confirm_abort(self) -> bool:
        """Ctrl-C at a question. A second Ctrl-C (or end of input) pauses."""
        try:
            return await self.console.confirm("Abort the incident?")
        except Interrupted:
            raise Paused from None

    async def _ask(self, incident: Incident, gate: Gate) -> Reply:
        view = views.gate_view(incident, gate)
        buttons = view.buttons
        menu = "  ".join(numbered(buttons))
        accepted = f"a number from 1 to {len(buttons)}" if len(buttons) > 1 else "1"
        while True:
            try:
                typed = await self.console.read_line(f"Your choice [1-{len(buttons)}]: ")
            except InputClosed:
                raise Paused from None
            picked = _pick(typed, [b.label for b in buttons])
            if picked is None:
                what = "Nothing typed" if not typed else f"“{typed[:40]}” is not a choice"
                self.console.say(f"{what}: type {accepted}, or the choice's words. ({menu})")
                continue
            button = buttons[picked]
            choice = button.choice
            if choice == "abort" and not await self.console.confirm("Abort the incident?"):
                self.console.say("Not aborted.")
                continue
            actor = self.requester
            if _approving(gate, choice):
                approver = await self._approver(incident)
                if approver is None:
                    continue
                actor = approver
            return Reply(choice, button.option, actor)

    async def _approver(self, incident: Incident) -> Actor | None:
        """Four-eyes at the prompt: an approver of the app, by name or id, not the requester."""
        app = self.apps.app(incident.app)
        listed = list(app.approvers) if app else []
        persons = [a for a in listed if not a.startswith("S")]
        names = ", ".join(self.people.name(a).removeprefix("@") for a in persons) or "nobody"
        try:
            typed = await self.console.read_line(f"Approver's name or user id ({names}): ")
        except InputClosed:
            raise Paused from None
        uid = self.apps.person(typed)
        if uid is not None and uid.startswith("S"):
            self.console.say(
                f"{self.people.name(uid)} is a user group; name the person who approves "
                "(the terminal cannot ask Slack who is in a group)."
            )
            return None
        if uid is None or uid not in listed:
            who = f"“{typed[:40]}”" if typed else "Nobody"
            self.console.say(f"{who} is not an approver of {incident.app}. Approvers: {names}.")
            return None
        if incident.production and uid == incident.requested_by:
            self.console.say(
                f"{self.people.name(uid)} started this rollback; {incident.app} is production, "
                "so another approver must approve (four-eyes)."
            )
            return None
        return Actor(user=uid)


def _pick(typed: str, labels: list[str]) -> int | None:
    """A number (1-based) or the unambiguous start of one label's words."""
    text = typed.strip().lower()
    if not text:
        return None
    if text.isdigit():
        n = int(text)
        return n - 1 if 1 <= n <= len(labels) else None
    exact = [i for i, label in enumerate(labels) if label.lower() == text]
    if exact:
        return exact[0]
    starts = [i for i, label in enumerate(labels) if label.lower().startswith(text)]
    return starts[0] if len(starts) == 1 else None


class CtrlC:
    """Ctrl-C while a step runs, acted on at its next fence (the step runner's pause point, given
    to it when it is built): once asks whether to abort, twice leaves the incident paused."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console
        self.paused = False
        self.abort_after_step = False

    async def at_fence(self, incident: Incident, step: StepId) -> None:
        """At a step's fence: act on a Ctrl-C pressed while the last command ran."""
        console = self.console
        if console is None or console.interrupts == 0:
            return
        if console.interrupts >= 2:
            self.paused = True
            raise StepError("stopped at the terminal (Ctrl-C twice)", hint="Retry, or Abort.")
        console.interrupts = 0
        try:
            abort = await console.confirm("Abort the incident?")
        except Interrupted:
            self.paused = True
            raise StepError(
                "stopped at the terminal (Ctrl-C twice)", hint="Retry, or Abort."
            ) from None
        if console.interrupts:  # Ctrl-C while the question was out counts as the second
            self.paused = True
            raise StepError("stopped at the terminal (Ctrl-C twice)", hint="Retry, or Abort.")
        if abort:
            self.abort_after_step = True
            raise StepError("aborted at the terminal (Ctrl-C)", hint="Aborting.")
        console.say("Going on.")


class Driver:
    """Runs the steps in this process and answers the gates until the incident ends or pauses."""

    def __init__(
        self,
        steps: StepRunner,
        queue: InlineQueue,
        store: Store,
        choose: Chooser,
        out: TextIO,
        ctrl_c: CtrlC | None = None,  # the one `steps` was built with, if any
        names: Callable[[str], str] = str,
    ) -> None:
        self.names = names  # a user id -> the name people know (from the apps file's `people`)
        self.steps, self.queue, self.store = steps, queue, store
        self.choose, self.out = choose, out
        self.ctrl_c = ctrl_c or CtrlC()

    @property
    def paused(self) -> bool:
        return self.ctrl_c.paused

    async def open(self, req: OpenRequest) -> Incident:
        incident = await self.steps.incidents.open(req)
        return await self.run(incident.id, req.actor)

    async def run(self, incident_id: str, actor: Actor) -> Incident:
        try:
            return await self._until_done(incident_id, actor)
        finally:
            await self.steps.aclose()

    async def _until_done(self, incident_id: str, actor: Actor) -> Incident:
        while True:
            await self.queue.drain(self.steps)
            current = await self.store.load(incident_id)
            assert current is not None
            if current.group is not None:  # a group: the member that waits for a person
                current = await self._asking(current)
            if not current.status.open or current.gate is None:
                return current
            gate = current.gate
            if self.ctrl_c.abort_after_step:
                self.ctrl_c.abort_after_step = False
                reply = Reply("abort", "", actor)
            elif self.ctrl_c.paused:
                return current
            else:
                try:
                    reply = await self.choose(current, gate)
                except Paused:
                    self.ctrl_c.paused = True
                    return current
            try:
                await self.steps.incidents.answer(
                    current.id, Answer(gate.token, reply.actor, reply.choice, reply.option)
                )
            except UserFacingError as exc:
                print(f"✗ {plain(exc.message, self.names)}", file=self.out)
                continue
            await self.store.audit(
                current.id, reply.actor.user, f"answered {reply.choice} at the terminal",
                f"OS user {where_am_i()}",
            )  # fmt: skip

    async def _asking(self, lead: Incident) -> Incident:
        """The first member of the lead's group with a question for a person, else the lead."""
        assert lead.group is not None
        for member_id in lead.group.members:
            member = await self.store.load(member_id)
            gate = member.gate if member is not None else None
            if member is not None and member.status.open and gate and gate.kind.value != "group":
                return member
        return lead


RunnerBuilder = Callable[..., tuple[StepRunner, "InlineQueue"]]
PlannerBuilder = Callable[[IncidentService, Path], Planner]
ChatFactory = Callable[[], Awaitable[Chat]]


@dataclass(frozen=True)
class Wiring:
    """What the composition root (`bot.app.terminal`) hands the terminal front: how to build the
    step runner that runs the steps here (SSH or local hosts, git) and the planner, where the
    store is, and how to reach the chat (Slack), if any."""

    runner: RunnerBuilder
    planner: PlannerBuilder
    stores: StoreOpener
    chat: ChatFactory | None = None


class StoreUnreachable(Exception):
    """Redis does not answer: nothing may start, and nobody may be told of it."""


async def _store_for(settings: Settings, stores: StoreOpener) -> Stores:
    """The shared store. An incident lives there before anyone hears of it, so without it the
    terminal starts nothing (a rollback nobody can see, resume or lock would fail open)."""
    try:
        return await stores.reach()
    except StoreUnavailable as exc:
        raise StoreUnreachable(redis_down_text(settings, exc)) from None


async def _plan_store(settings: Settings, out: TextIO, stores: StoreOpener) -> Store:
    """A plan changes nothing and tells nobody: without Redis it is made from memory."""
    try:
        return (await _store_for(settings, stores)).incidents
    except StoreUnreachable:
        print(f"⚠ Redis at {redact(settings.redis_url)} does not answer: the plan cannot see "
              "a running incident or a freeze of the app.", file=out)  # fmt: skip
        return stores.memory().incidents


def redis_down_text(settings: Settings, exc: BaseException) -> str:
    reason = redact(str(exc).splitlines()[0].rstrip(".") if str(exc) else "")
    reason = reason or "no answer within 10 s"
    return (
        f"✗ Redis at {redact(settings.redis_url)} (REDIS_URL) does not answer: {reason}.\n"
        "  An incident is stored there before anyone is told of it, so nothing was started "
        "and nobody was told.\n"
        "  Start Redis, or set REDIS_URL to the Redis the bot uses, then run this again. "
        f"On this machine:\n    $ {START_REDIS}"
    )


# Starts a throwaway local Redis unless the one REDIS_URL names answers.
START_REDIS = (
    'redis-cli -u "${REDIS_URL:-redis://localhost:6379/0}" ping || '
    'redis-server --daemonize yes --save "" --appendonly no'
)


@dataclass(frozen=True)
class RollbackArgs:
    app: str
    version: Version | None  # parsed from the arguments
    reason: str
    yes: bool = False
    major: bool = False
    break_glass: bool = False
    as_user: str = ""
    pins: tuple[tuple[str, Version], ...] = ()  # a group's APP=VERSION


def refusal(apps: AppsFile, args: RollbackArgs, *, plan: bool = False) -> str | None:
    """What stops this run before anything starts, in words, or None. A plan changes nothing,
    so it needs no break-glass, in production too."""
    group = apps.group(args.app)
    app = apps.app(args.app)
    if app is None and group is None:
        known = ", ".join(sorted(apps.apps)) or "none"
        return f"I don't know an app called {args.app!r}. Known apps: {known}."
    production = any(a.production for a in group) if group else bool(app and app.production)
    if group is not None and args.version is not None and not args.pins:
        return f"{args.app} is a group: pick a version per app as APP=VERSION, or none."
    if group is None and args.pins:
        return f"{args.app} is an app, not a group: rewind rollback {args.app} VERSION."
    if group is not None:
        try:
            check_pins(apps, args.app, args.pins)
        except UserFacingError as exc:
            return plain(exc.message)
    if production and not args.break_glass and not plan:
        return (
            f"{args.app} is production. From the terminal that is break-glass: add "
            "--break-glass (it is written to the audit trail with your OS user and host), "
            "or use /rollback in Slack."
        )
    if production and args.yes:
        return (
            f"--yes cannot be used for {args.app}: it is production, and each approval must "
            "name an approver other than you (four-eyes). Run without --yes."
        )
    if args.yes and not args.reason.strip():
        return "--yes needs --reason TEXT: say what broke (the reason is required)."
    if args.as_user and apps.person(args.as_user) is None:
        return f"--as {args.as_user!r}: not a name in the apps file's people, nor a user id."
    return None


async def ask_reason(console: Console) -> str:
    """The reason is required, as in Slack: asked until given."""
    while True:
        reason = await console.read_line("Why roll back? (what broke, required): ")
        if reason:
            return reason
        console.say("A reason is required: say what broke, e.g. “checkout returns 500”.")


def resume_hint(incident: Incident) -> str:
    waiting = views.GATE_WAITING[incident.gate.kind] if incident.gate else incident.status.value
    return (
        f"Incident {incident.id} is paused, not aborted ({waiting}).\n"
        f"  See where it stands:  python -m bot status {incident.id}\n"
        f"  Go on here:           python -m bot resume {incident.id}\n"
        f"  Or in Slack:          /rollback status {incident.id} (it carries the buttons)"
    )


async def run_rollback(
    settings: Settings,
    apps: AppsFile,
    args: RollbackArgs,
    out: TextIO = sys.stdout,
    stream_in: TextIO = sys.stdin,
    resume: str = "",
    *,
    wiring: Wiring,
) -> int:
    if not out.isatty():  # a pipe, CI: every line wrapped at 80 columns, never cut
        out = cast(TextIO, WrappedOut(out))
    try:
        if not resume and (why := refusal(apps, args)):
            print(f"✗ {why}", file=out)
            return 2
        return await _at_the_prompt(settings, apps, args, out, stream_in, resume, wiring)
    finally:
        out.flush()


async def _at_the_prompt(
    settings: Settings,
    apps: AppsFile,
    args: RollbackArgs,
    out: TextIO,
    stream_in: TextIO,
    resume: str,
    wiring: Wiring,
) -> int:
    from bot.fronts.terminal.connect import connect_terminal_notifier

    console = Console(stream_in, out)
    console.install()

    async def connect(
        settings: Settings, apps: AppsFile, store: Store, out: TextIO, held: HeldNotices
    ) -> tuple[TerminalNotifier, People]:
        reached = await wiring.chat() if wiring.chat is not None else NoChat()
        return await connect_terminal_notifier(settings, apps, store, out, reached, held)

    try:
        return await _run(settings, apps, args, console, out, resume, connect, wiring)
    except StoreUnreachable as exc:
        print(exc, file=out)
        return 1
    except Paused:
        return EXIT_INTERRUPTED
    finally:
        console.uninstall()


async def _run(
    settings: Settings,
    apps: AppsFile,
    args: RollbackArgs,
    console: Console,
    out: TextIO,
    resume: str,
    connect: Callable[..., Awaitable[tuple[TerminalNotifier, People]]],
    wiring: Wiring,
) -> int:
    shared = await _store_for(settings, wiring.stores)
    store = shared.incidents
    notifier, people = await connect(settings, apps, store, out, shared.held)
    ctrl_c = CtrlC(console)
    steps, queue = wiring.runner(apps, store, notifier, settings.workspace, ctrl_c)
    os_user = getpass.getuser()
    uid = apps.person(args.as_user) if args.as_user else apps.person(os_user)
    requester = terminal_actor(apps, uid or f"terminal:{os_user}")
    if args.yes:
        chooser: Chooser = auto_chooser(apps, requester)
    else:
        chooser = Prompter(console, apps, requester, people)
    driver = Driver(steps, queue, store, chooser, out, ctrl_c, people.bare)
    try:
        if resume:
            incident = await store.load(resume)
            if incident is None:
                print(f"✗ No incident {resume!r} in Redis ({settings.redis_url}).", file=out)
                return 2
            await notifier.update_parent(incident)
            if incident.gate is not None:
                await notifier.ask(incident, incident.gate)
            await store.audit(incident.id, requester.user, "resumed at the terminal",
                              f"OS user {where_am_i()}")  # fmt: skip
            incident = await driver.run(incident.id, requester)
        else:
            try:
                reason = args.reason.strip() or await ask_reason(console)
            except (Interrupted, InputClosed):
                console.say("Nothing was started.")
                return EXIT_INTERRUPTED
            cmd = Command("start", args.app, args.version, reason, major=args.major, pins=args.pins)
            planner = wiring.planner(steps.incidents, settings.workspace)
            dispatcher = Dispatcher(steps.incidents, store, planner, source="terminal")
            incident = await _open(driver, dispatcher, store, cmd, requester, args.break_glass)
    except UserFacingError as exc:
        print(f"✗ {plain(exc.message, people.bare)}", file=out)
        return 1
    except (OSError, StoreError) as exc:  # the store went away mid-way
        why = f"Redis at {redact(settings.redis_url)} stopped answering ({redact(str(exc))})"
        await notifier.stopped(why)
        print(f"✗ Stopped: {why}. The hosts are as the lines above say; see them before "
              "anything else runs.", file=out)  # fmt: skip
        return 1
    if driver.paused and incident.status.open:
        console.say("\n" + resume_hint(incident))
        return EXIT_INTERRUPTED
    ended = incident.outcome or incident.ended_by
    print(
        f"\n{plain(said.outcome(incident), people.bare) if ended else incident.status.value}",
        file=out,
    )
    # Fix forward is a decision, not a failure; an abort or a cancel is not what was asked.
    return 0 if incident.status.value in {"completed", "fixed_forward"} else 1


async def _open(
    driver: Driver,
    dispatcher: Dispatcher,
    store: Store,
    cmd: Command,
    actor: Actor,
    break_glass: bool,
) -> Incident:
    """`rollback APP …` is `/rollback APP …`: the same checks (`Dispatcher`), then run here."""
    opened = await dispatcher.run(cmd, actor)
    assert isinstance(opened, Opened)
    incident = opened.incident
    what = "break-glass: started at the terminal" if break_glass else "started at the terminal"
    await store.audit(incident.id, actor.user, what, f"OS user {where_am_i()}")
    return await driver.run(incident.id, actor)


async def show_status(
    settings: Settings, apps: AppsFile, target: str, out: TextIO, *, wiring: Wiring
) -> int:
    """`python -m bot status [APP|INCIDENT]` and `list`: `/rollback status` and `list` through
    the same `Dispatcher`, in the terminal's words."""
    from bot.plan.build import Quiet

    people = People.from_apps_file(apps.people)
    shared = wiring.stores.open()
    store = shared.incidents
    steps, _ = wiring.runner(apps, store, Quiet(), settings.workspace)
    planner = wiring.planner(steps.incidents, settings.workspace)
    dispatcher = Dispatcher(steps.incidents, store, planner, source="terminal")
    cmd = Command("list") if target == "--list" else Command("status", target=target)
    actor = terminal_actor(apps, f"terminal:{getpass.getuser()}")
    try:
        try:
            reply = await asyncio.wait_for(dispatcher.run(cmd, actor), 15)
        except (TimeoutError, OSError, StoreUnavailable) as exc:
            print(f"✗ Redis at {redact(settings.redis_url)} does not answer ({exc or 'timeout'}): "
                  "incidents live there. Start Redis or set REDIS_URL.", file=out)  # fmt: skip
            return 1
        except UserFacingError as exc:
            print(plain(exc.message, people.bare).replace("`", ""), file=out)
            return 1
    finally:
        await steps.aclose()
        await shared.aclose()
    print(plain(reply_message(reply), people.bare).replace("`", ""), file=out)
    return 0


async def run_plan(
    settings: Settings,
    apps: AppsFile,
    args: RollbackArgs,
    out: TextIO = sys.stdout,
    *,
    wiring: Wiring,
) -> int:
    """`rollback … --plan`: the plan, printed and saved as a file; nothing changed anywhere."""
    from bot.plan import render
    from bot.plan.build import Quiet
    from bot.plan.group import filename as group_filename
    from bot.plan.group import markdown as group_markdown

    say = out if out.isatty() else cast(TextIO, WrappedOut(out))  # the plan itself stays as is
    if why := refusal(apps, args, plan=True):
        print(f"✗ {why}", file=say)
        return 2
    store = await _plan_store(settings, say, wiring.stores)
    steps, _ = wiring.runner(apps, store, Quiet(), settings.workspace)
    os_user = getpass.getuser()
    uid = apps.person(args.as_user) if args.as_user else apps.person(os_user)
    cmd = Command("plan", args.app, args.version, args.reason, pins=args.pins)
    try:
        planner = wiring.planner(steps.incidents, settings.workspace)
        made = await Dispatcher(steps.incidents, store, planner, source="terminal").run(
            cmd, terminal_actor(apps, uid or f"terminal:{os_user}")
        )
    except UserFacingError as exc:
        print(f"✗ {plain(exc.message)}", file=say)
        return 1
    finally:
        await steps.aclose()
    if isinstance(made, GroupPlanMade):  # a group: each app's plan, in the group's order
        text, name = group_markdown(made.group), group_filename(made.group)
    else:
        assert isinstance(made, PlanMade)
        text, name = render.markdown(made.plan), render.filename(made.plan)
    path = settings.workspace / "files" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text, file=out)
    print(f"Plan saved as {path}.\nNothing was changed to make it.", file=say)
    return 0
