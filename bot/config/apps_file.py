"""The apps file (`config/apps.yaml`): what Rewind may roll back, where, and who may ask.

Loaded once at start-up; a bad file stops the process with the file, the key and the reason.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.checks.health import HealthCheck
from bot.checks.logs import LogsConfig
from bot.checks.metrics_config import MetricConfig, ResourcesConfig
from bot.checks.smoke import SmokeConfig
from bot.config.paths import absolute, repo_location
from bot.config.strategy_names import CHECKOUT_STRATEGIES
from bot.workflow.errors import ConfigError, Problem
from bot.workflow.group import Member
from bot.workflow.policy import NON_PRODUCTION_ENVIRONMENTS, PRODUCTION_ENVIRONMENTS, is_production

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_CHANNEL = re.compile(r"^[CG][A-Z0-9]+$")
_PERSON = re.compile(r"^[UWS][A-Z0-9]+$")
_MENTION = re.compile(r"^(?:<@[UW][A-Z0-9]{2,}>|<!subteam\^S[A-Z0-9]{2,}(?:\|[^<>]*)?>|"
                      r"<!(?:here|channel|everyone)>|[UWS][A-Z0-9]{2,})$")  # fmt: skip


def check_address(value: str) -> str:
    """A host name or an IP address, nothing an `ssh` command line could take for an option."""
    import ipaddress

    v = value.strip()
    try:
        ipaddress.ip_address(v)
        return v
    except ValueError:
        pass
    labels = v.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        raise ValueError(f"{value!r} is not a valid IP address (each part 0-255, e.g. 10.0.0.11)")
    if not v or len(v) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(
            f"{value[:60]!r} is not a host name or IP address: use letters, digits, '-' and '.' "
            "only, not starting with '-' (e.g. web1.example.com or 10.0.0.11)"
        )
    return v


def check_channel(value: str) -> str:
    if not _CHANNEL.match(value):
        raise ValueError(
            f"{value[:60]!r} is not a channel id: use the id (C… or G…; in Slack, the channel's "
            "name → About, at the bottom), not its name"
        )
    return value


def check_person(value: str) -> str:
    if not _PERSON.match(value):
        raise ValueError(
            f"{value[:60]!r} is not a user or user-group id: use the id (U…, from the profile's "
            "⋮ → Copy member ID; or S… for a user group), not a name"
        )
    return value


def parse_duration(value: Any) -> float:
    """'15m', '30s', '2h', 10 -> seconds."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SshConfig(_Model):
    user: str = "deploy"
    known_hosts: str | None = None
    client_keys: list[str] = Field(default_factory=list)
    connect_timeout: float = 10.0
    # `local` runs the commands on this machine in each host's workdir (the demo, small installs).
    transport: Literal["ssh", "local"] = "ssh"

    @field_validator("known_hosts", mode="after")
    @classmethod
    def _known_hosts(cls, v: str | None) -> str | None:
        return str(absolute(v)) if v else v

    @field_validator("client_keys", mode="after")
    @classmethod
    def _client_keys(cls, v: list[str]) -> list[str]:
        return [str(absolute(key)) for key in v]


class HostConfig(_Model):
    name: str
    address: str  # required: a host is never assumed to be the bot's own machine
    port: int = Field(default=22, ge=1, le=65535)
    workdir: str | None = None  # per-host override of deploy.workdir
    vars: dict[str, str] = Field(default_factory=dict)  # extra placeholders, e.g. app_port

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return check_address(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("host names may hold letters, digits, '.', '_' and '-' only")
        return v


class DeployConfig(_Model):
    strategy: Literal["systemd", "docker-compose", "commands", "kubernetes"] = "systemd"
    workdir: str
    service: str | None = None
    image: str | None = None  # kubernetes: the image repository; the tag is the version
    namespace: str = "default"  # kubernetes
    run_on: str | None = None  # kubernetes: the host that runs kubectl (default: the first)
    commands: dict[str, str] = Field(default_factory=dict)
    # Hosts worked on at once. High by default: a rollback's hosts should all move together;
    # lower it when many hosts share something that cannot take them all at once.
    concurrency: int = Field(default=100, ge=1)
    rolling: int | None = Field(default=None, ge=1)  # hosts per batch; None = all at once
    timeout: float = 300.0  # per command, seconds
    # Keep the last N releases on each host (`<workdir>/releases/<version>` and a `current`
    # symlink); None: `workdir` is the checkout itself, as before.
    releases: int | None = Field(default=None, ge=1, le=100)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float:
        return parse_duration(v)

    @property
    def keeps_releases(self) -> bool:
        """The release rolled back from stays on the hosts (pruning keeps 2 or more)."""
        return (self.releases or 0) >= 2

    @property
    def checkout(self) -> bool:
        """Its hosts keep a git checkout of the app (`CHECKOUT_STRATEGIES`)."""
        return self.strategy in CHECKOUT_STRATEGIES


class DatabaseConfig(_Model):
    run_on: str
    # The database's name: apps of a group whose databases have the same name share one, which
    # is backed up and downgraded once, after every one of them is redeployed (`groups:`).
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    alembic: str = "alembic"
    backup: str | None = None
    restore: str | None = None
    verify: str | None = None
    backups: str | None = None
    backup_dir: str = "/var/backups"
    versions_dir: str = "alembic/versions"  # where the app keeps its revision files
    # A dump, a restore or a downgrade of a real database outlasts a deploy command.
    timeout: float = 3600.0

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float:
        return parse_duration(v)


class MonitorConfig(_Model):
    duration: float = 900.0
    interval: float = 30.0
    summary_every: float = 60.0
    failure_streak: int = 3

    @field_validator("duration", "interval", "summary_every", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> float:
        return parse_duration(v)


class VerifyConfig(_Model):
    health_timeout: float = 60.0  # how long health may take to come good after a restart
    health_interval: float = 2.0

    @field_validator("health_timeout", "health_interval", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> float:
        return parse_duration(v)


class WatchConfig(_Model):
    """After a reported deploy: how long and how often to look, and what counts as bad."""

    duration: float = 900.0
    interval: float = 30.0
    availability: float = Field(default=99.0, ge=0, le=100)  # percent; under it is bad
    p95_factor: float = Field(default=2.0, gt=1)  # p95 over this times the baseline is bad
    # A p95 that doubles from 2 ms to 4 ms is noise: it must also grow by this much.
    p95_min_ms: float = Field(default=50.0, ge=0)
    errors_per_minute: float = Field(default=10.0, ge=0)  # error lines in the logs
    # A single failed probe is not enough: one URL failing this many probes in a row, or
    # `failures + 1` failed probes in all.
    failures: int = Field(default=2, ge=2)

    @field_validator("duration", "interval", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> float:
        return parse_duration(v)

    @model_validator(mode="after")
    def _sane(self) -> WatchConfig:
        if self.interval <= 0 or self.duration < self.interval:
            raise ValueError("interval must be positive and at most the duration")
        if self.duration / self.interval > 1000:
            # Every probe of a watch is kept in its Redis record until the watch ends.
            raise ValueError("at most 1000 probes per watch: lengthen the interval")
        return self


class WebhookConfig(_Model):
    """An outgoing webhook: a signed JSON POST on incident opened, step done, completed, aborted."""

    url: str
    secret: SecretStr

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v


class AppConfig(_Model):
    name: str = ""
    environment: str = "production"
    repo: str
    incident_channel: str
    notify: list[str] = Field(default_factory=list)
    mention: list[str] = Field(default_factory=list)
    operators: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)
    ssh: SshConfig = Field(default_factory=SshConfig)
    hosts: list[HostConfig] = Field(min_length=1)
    deploy: DeployConfig
    database: DatabaseConfig | None = None
    health: list[HealthCheck] = Field(default_factory=list)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    smoke: SmokeConfig = Field(default_factory=SmokeConfig)
    metrics: list[MetricConfig] = Field(default_factory=list)  # the team's own signals
    resources: ResourcesConfig | None = None  # None: resource usage is not read
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    watch: WatchConfig | None = None  # None: deploys of this app are recorded, not watched
    auto_rollback: StrictBool = False  # "yes" as a string is a typo, not a yes
    webhooks: list[WebhookConfig] = Field(default_factory=list)

    @field_validator("repo", mode="after")
    @classmethod
    def _repo(cls, v: str) -> str:
        return repo_location(v)

    @field_validator("incident_channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        return check_channel(v)

    @field_validator("notify")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        return _each(v, check_channel)

    @field_validator("operators", "approvers")
    @classmethod
    def _people(cls, v: list[str]) -> list[str]:
        return _each(v, check_person)

    @field_validator("mention")
    @classmethod
    def _mentions(cls, v: list[str]) -> list[str]:
        for i, item in enumerate(v):
            if not _MENTION.match(item):
                raise ValueError(
                    f'[{i}] {item[:60]!r} is not a mention: use "<!subteam^S…>" (a user '
                    'group), "<@U…>" (a person) or "<!here>"'
                )
        return v

    # Set from the file's `environments:` once the whole file is read (AppsFile below).
    _non_production: tuple[str, ...] = PrivateAttr(default=NON_PRODUCTION_ENVIRONMENTS)

    @property
    def production(self) -> bool:
        """Four-eyes, no auto_rollback. An omitted environment reads as production."""
        return is_production(self.environment, self._non_production)

    def host(self, name: str) -> HostConfig:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def workdir(self, host: HostConfig) -> str:
        """The configured `workdir`: with `deploy.releases`, the directory that holds
        `releases/` and `current`; without, the app's checkout itself."""
        return host.workdir or self.deploy.workdir

    def run_dir(self, host: HostConfig) -> str:
        """Where the app's commands run (status, logs, version, restart, alembic…):
        `<workdir>/current` with `deploy.releases`, else `workdir`."""
        base = self.workdir(host)
        return base.rstrip("/") + "/current" if self.deploy.releases else base

    # Cross-references (run_on, people, environment names, what a strategy needs) are checked
    # on the raw data by `bot.config.apps_refs`, in the same pass as everything else.


class IncidentsConfig(_Model):
    dir: str = Field(default="incidents/", validate_default=True)

    @field_validator("dir", mode="after")
    @classmethod
    def _dir(cls, v: str) -> str:
        return str(absolute(v))


def _each(values: list[str], check: Any) -> list[str]:
    for i, value in enumerate(values):
        try:
            check(value)
        except ValueError as exc:
            raise ValueError(f"[{i}] {exc}") from None
    return values


class EnvironmentsConfig(_Model):
    """The environment names that exist; any other is an error. Names are case-insensitive."""

    production: list[str] = Field(default_factory=lambda: list(PRODUCTION_ENVIRONMENTS))
    non_production: list[str] = Field(default_factory=lambda: list(NON_PRODUCTION_ENVIRONMENTS))

    @field_validator("production", "non_production")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            if not _ID.match(name):
                raise ValueError(f"[{i}] {name[:60]!r}: letters, digits, . _ - only")
        return v


class AppsFile(_Model):
    apps: dict[str, AppConfig]
    environments: EnvironmentsConfig = Field(default_factory=EnvironmentsConfig)
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    # name -> Slack user (or user-group) id: names typed at the terminal, shown on it.
    people: dict[str, str] = Field(default_factory=dict)
    # name -> apps released together, in rollback order (`bot.config.apps_groups` checks them).
    groups: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("people")
    @classmethod
    def _people(cls, v: dict[str, str]) -> dict[str, str]:
        for name, uid in v.items():
            try:
                check_person(uid)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return v

    path: str = ""

    @model_validator(mode="after")
    def _environments(self) -> AppsFile:
        for app in self.apps.values():
            app._non_production = tuple(self.environments.non_production)
        return self

    def app(self, name: str) -> AppConfig | None:
        return self.apps.get(name)

    def group(self, name: str) -> list[AppConfig] | None:
        """A group's apps in rollback order, or None when `name` is not a group."""
        members = self.groups.get(name)
        return None if members is None else [self.apps[m] for m in members]

    def group_members(self, name: str) -> list[Member]:
        """A group's apps as the pure core sees them: the order and who shares a database."""
        return [
            Member(app.name, app.database is not None, app.database.name if app.database else None)
            for app in self.group(name) or []
        ]

    def person(self, typed: str) -> str | None:
        """A name from `people` or an id as typed (`@alice`, `alice`, `U0ALICE`) -> the id."""
        bare = typed.strip().removeprefix("@")
        if bare in self.people:
            return self.people[bare]
        lowered = {k.lower(): v for k, v in self.people.items()}
        if bare.lower() in lowered:
            return lowered[bare.lower()]
        return bare if re.fullmatch(r"[UWS][A-Z0-9]{2,}", bare) else None


def parse_apps(data: Any, path: str, text: str = "") -> AppsFile:
    """The apps file as a model, or a `ConfigError` listing every problem (with lines when the
    YAML `text` is given)."""
    from bot.config.apps_groups import group_problems
    from bot.config.apps_problems import (
        duplicate_keys,
        from_validation,
        key_lines,
        line_of,
        metric_problems,
        placeholder_problems,
    )
    from bot.config.apps_refs import reference_problems, resolve_people

    lines = key_lines(text) if text else {}
    if not isinstance(data, dict) or "apps" not in data:
        raise ConfigError(path, "apps", "missing: the file must have a top-level 'apps:' map")
    problems: list[Problem] = []
    if isinstance(data.get("apps"), dict):
        for name, app in data["apps"].items():
            if not _ID.match(str(name)):
                loc = ("apps", str(name))
                problems.append(Problem(f"apps.{name}", "app names: letters, digits, . _ - only",
                                        "rename the app", line_of(lines, loc)))  # fmt: skip
            if isinstance(app, dict):
                app.setdefault("name", name)
    problems += placeholder_problems(data, lines) + reference_problems(data, lines)
    problems += metric_problems(data, lines)  # two metrics of one name
    problems += group_problems(data, lines)
    problems += duplicate_keys(text) if text else []
    try:
        model = AppsFile.model_validate({**resolve_people(data), "path": path})
    except ValidationError as exc:
        problems = _one_per_key(from_validation(exc, lines, AppsFile), problems) + problems
        model = None
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        first = problems[0]
        raise ConfigError(path, first.key, first.what, problems)
    assert model is not None
    return model


def _one_per_key(found: list[Problem], ours: list[Problem]) -> list[Problem]:
    """The model's problems, less those a cross-check already says better (same key or below)."""
    keys = {p.key for p in ours}
    return [p for p in found if not any(k == p.key or k.startswith(p.key + "[") for k in keys)]


def load_apps(path: str | Path) -> AppsFile:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(str(p), "(file)", f"cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        from bot.config.apps_problems import syntax_problem

        problem = syntax_problem(exc, text)
        raise ConfigError(str(p), problem.key, problem.what, [problem]) from None
    return parse_apps(data, str(p), text)
