"""The tests' stand-ins in one place: a recording Notifier, apps, incidents, step contexts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from bot.config.apps_file import AppConfig, AppsFile, parse_apps
from bot.fronts.slack import mrkdwn
from bot.ports import AuditEntry, HostRunner
from bot.steps.context import StepContext
from bot.views.incident import gate_view
from bot.workflow import said
from bot.workflow.facts import AnswerFact, Facts
from bot.workflow.machine import new_steps
from bot.workflow.messages import Message, message
from bot.workflow.model import Gate, Incident, StepId, ThreadRef
from runners.git import GitRepos


class Upload(NamedTuple):
    filename: str
    content: str
    title: str
    comment: str


@dataclass
class RecordingNotifier:
    """`bot.ports.Notifier` that keeps everything it is told, for assertions."""

    said: list[str] = field(default_factory=list)
    lines: list[tuple[StepId, str, str]] = field(default_factory=list)  # step, host, line
    uploads: list[Upload] = field(default_factory=list)
    asked: list[Gate] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)  # each gate's question and facts, as asked
    alerts: list[str] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)
    told: list[tuple[str, str]] = field(default_factory=list)  # (incident id, phase)
    parents: list[Facts] = field(default_factory=list)  # the facts at each parent update

    @property
    def text(self) -> str:
        """Everything said in the thread, as one string."""
        return "\n".join(self.said)

    def output_of(self, host: str) -> list[str]:
        return [line for _, h, line in self.lines if h == host]

    async def open_thread(self, incident: Incident) -> ThreadRef:
        return ThreadRef(channel="C0INCIDENT", ts="1.000")

    async def update_parent(self, incident: Incident) -> None:
        self.parents.append(incident.facts.model_copy(deep=True))

    async def say(self, incident: Incident, message: Message) -> None:
        self.said.append(mrkdwn.render(message))

    async def output(self, incident: Incident, step: StepId, host: str, line: str) -> None:
        self.lines.append((step, host, line))

    async def flush(self, incident: Incident) -> None:
        return None

    async def ask(self, incident: Incident, gate: Gate) -> None:
        self.asked.append(gate)
        view = gate_view(incident, gate)
        self.questions.append(mrkdwn.render(Message((view.question, *view.facts))))

    async def held_notices(self, incident: Incident) -> list[str]:
        return []

    async def stakeholders(
        self,
        incident: Incident,
        phase: Literal["start", "end"],
        channels: Sequence[str] | None = None,
        members: Sequence[Incident] = (),
    ) -> list[str]:
        self.told.append((incident.id, phase))
        return []

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
        self.uploads.append(Upload(filename, content, title, comment))

    async def alert(self, incident: Incident, message: Message) -> None:
        self.alerts.append(mrkdwn.render(message))

    async def resolve_gate(self, incident: Incident, token: str, answer: AnswerFact) -> None:
        self.resolved.append((token, mrkdwn.render(message(*said.answer(answer)))))


def apps_file(name: str, config: dict[str, Any]) -> AppsFile:
    return parse_apps({"apps": {name: config}}, "test")


def new_incident(
    app: AppConfig, *, incident_id: str = "INC-42", requested_version: str | None = None
) -> Incident:
    return Incident(
        id=incident_id,
        app=app.name,
        environment=app.environment,
        requested_version=requested_version,
        reason="checkout answers 500",
        requested_by="U0CAROL",
        steps=new_steps(),
    )


def app_config(
    repo: str, hosts: list[dict[str, Any]], workdir: str, **extra: Any
) -> dict[str, Any]:
    """An apps-file entry with the `commands` strategy, as the step tests use it."""
    config: dict[str, Any] = {
        "environment": "staging",
        "repo": repo,
        "incident_channel": "C0INCIDENT",
        "operators": ["U0CAROL"],
        "approvers": ["U0ALICE"],
        "ssh": {"user": "root", "known_hosts": "/nonexistent/known_hosts"},
        "hosts": hosts,
        "deploy": {"strategy": "commands", "workdir": workdir, "commands": STEP_COMMANDS},
    }
    config.update(extra)
    return config


STEP_COMMANDS = {
    "fetch": "git fetch --tags --force origin {ref} && git checkout --force FETCH_HEAD",
    "install": "true",
    "restart": "./run.sh restart",
    "stop": "./run.sh stop",
    "start": "./run.sh start",
    "status": "./run.sh status",
    "version": "git describe --tags --always",
}


def with_step_commands(config: dict[str, Any]) -> dict[str, Any]:
    """A fixture's apps entry with the stop/start/fetch commands the step tests rely on."""
    deploy = {**config["deploy"], "commands": {**config["deploy"]["commands"], **STEP_COMMANDS}}
    return {**config, "deploy": deploy}


def make_apps(app: dict[str, Any], incidents_dir: str = "incidents/") -> AppsFile:
    return parse_apps({"apps": {"myapp": app}, "incidents": {"dir": incidents_dir}}, "test")


def make_incident(**kw: Any) -> Incident:
    values: dict[str, Any] = {
        "id": "ab12",
        "app": "myapp",
        "environment": "staging",
        "requested_version": "v1.4.2",
        "reason": "checkout returns 500 since the 1.5.0 deploy",
        "requested_by": "U0CAROL",
        "steps": new_steps(),
        "facts": {"assess": {"target": "v1.4.2", "deployed": "v1.5.0"}},
    }
    values.update(kw)
    return Incident(**values)


def make_ctx(
    apps: AppsFile,
    hosts: HostRunner,
    *,
    step: StepId,
    incident: Incident | None = None,
    notifier: RecordingNotifier | None = None,
    workspace: Path = Path("/tmp"),
    timeline: Sequence[AuditEntry] = (),
) -> StepContext:
    """The context a step body gets, for the incident's app in `apps` (by default
    `make_incident()`: myapp, assessed). The lock fence always passes; the audit timeline is
    `timeline`."""
    incident = incident or make_incident()

    async def fence() -> None:
        return None

    async def trail() -> list[AuditEntry]:
        return list(timeline)

    return StepContext(
        incident=incident,
        step=step,
        app=apps.apps[incident.app],
        apps=apps,
        hosts=hosts,
        notifier=notifier or RecordingNotifier(),
        repos=GitRepos(workspace),
        workspace=workspace,
        fence=fence,
        timeline=trail,
    )


def step_app(env: Any, **overrides: Any) -> dict[str, Any]:
    """The apps-file entry of the step tests: `commands` strategy on the SSH test hosts, one
    health URL per host through its `app_port` var."""
    cfg: dict[str, Any] = env.app_config()
    cfg["hosts"] = [
        {
            "name": h.name,
            "address": h.address,
            "port": h.port,
            "vars": {"app_port": str(h.app_port)},
        }
        for h in env.hosts
    ]
    cfg["deploy"] = {
        "strategy": "commands",
        "workdir": env.workdir,
        "timeout": "60s",
        "commands": {
            "fetch": "git fetch --tags --force origin {ref} && git checkout --force FETCH_HEAD",
            "install": "true",
            "restart": "./run.sh restart",
            "status": "./run.sh status",
            "logs": "tail -n 200 app.log",
            "version": "git describe --tags --always",
        },
    }
    cfg["health"] = [
        {"url": "http://127.0.0.1:{app_port}/healthz", "status": 200},
        {"url": "http://127.0.0.1:{app_port}/api/health", "json": {"status": "ok"}},
    ]
    cfg["verify"] = {"health_timeout": "3s", "health_interval": "0.3s"}
    cfg.update(overrides)
    return cfg
