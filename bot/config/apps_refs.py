"""The checks of the apps file that look across keys: environment names, hosts named elsewhere,
people, what a strategy needs, and the settings that decide a protection.

They read the raw YAML data, not the model, so they run in the same pass as every other check:
one `rewind check` lists every problem, even when the app has others the model refuses. Each
check looks only at values of the right type; a wrong type is the model's to report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.config.apps_problems import Loc, did_you_mean, dotted, line_of
from bot.workflow.errors import Problem
from bot.workflow.policy import NON_PRODUCTION_ENVIRONMENTS, PRODUCTION_ENVIRONMENTS

_ID = re.compile(r"^[UWS][A-Z0-9]+$")
_COMMANDS = ("fetch", "install", "restart", "stop", "start", "status", "logs", "version", "undo")
_NEEDED = ("fetch", "install", "restart", "status", "version")  # strategy: commands


@dataclass(frozen=True)
class Environments:
    production: tuple[str, ...] = PRODUCTION_ENVIRONMENTS
    non_production: tuple[str, ...] = NON_PRODUCTION_ENVIRONMENTS

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Environments:
        """The file's `environments:` (each list that is not a list of names: the default)."""
        given = data.get("environments")
        given = given if isinstance(given, Mapping) else {}
        return cls(
            production=_names(given.get("production"), PRODUCTION_ENVIRONMENTS),
            non_production=_names(given.get("non_production"), NON_PRODUCTION_ENVIRONMENTS),
        )

    def known(self, name: str) -> bool:
        return name.strip().lower() in {n.lower() for n in self.production + self.non_production}

    def is_production(self, name: str | None) -> bool:
        """An omitted environment is production: the strict reading, four-eyes applies."""
        return name is None or name.strip().lower() not in {n.lower() for n in self.non_production}


def _names(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return default


def resolve_people(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the data with each operator/approver given by a `people:` name put as its id."""
    people = _people(data)
    apps = data.get("apps")
    if not people or not isinstance(apps, Mapping):
        return dict(data)
    out_apps: dict[Any, Any] = {}
    for name, app in apps.items():
        if isinstance(app, Mapping):
            app = dict(app)
            for key in ("operators", "approvers"):
                if isinstance(app.get(key), list):
                    app[key] = [_person_id(v, people) or v for v in app[key]]
        out_apps[name] = app
    return {**data, "apps": out_apps}


def _people(data: Mapping[str, Any]) -> dict[str, str]:
    people = data.get("people")
    if not isinstance(people, Mapping):
        return {}
    return {str(k).lower(): v for k, v in people.items() if isinstance(v, str) and _ID.match(v)}


def _person_id(value: Any, people: Mapping[str, str]) -> str | None:
    if not isinstance(value, str):
        return None
    if _ID.match(value):
        return value
    return people.get(value.strip().removeprefix("@").lower())


def reference_problems(data: Mapping[str, Any], lines: Mapping[Loc, int]) -> list[Problem]:
    envs = Environments.of(data)
    problems = list(_environments_problems(data, lines))
    apps = data.get("apps")
    if isinstance(apps, Mapping):
        for name, app in apps.items():
            if isinstance(app, Mapping):
                found = _app_problems(str(name), app, envs, _people(data))
                problems += [Problem(dotted(loc), what, fix, line_of(lines, loc))
                             for loc, what, fix in found]  # fmt: skip
    return problems


def _environments_problems(data: Mapping[str, Any], lines: Mapping[Loc, int]) -> Iterator[Problem]:
    given = data.get("environments")
    if not isinstance(given, Mapping):
        return
    envs = Environments.of(data)
    loc: Loc = ("environments", "production")
    if "production" in given and not envs.production:
        yield Problem(dotted(loc), "no production environment named",
                      "list at least one, e.g. [production]", line_of(lines, loc))  # fmt: skip
    both = {n.lower() for n in envs.production} & {n.lower() for n in envs.non_production}
    if both:
        loc = ("environments", "non_production")
        yield Problem(dotted(loc), f"named both production and not: {', '.join(sorted(both))}",
                      "name each environment once", line_of(lines, loc))  # fmt: skip


Found = Iterator[tuple[Loc, str, str]]


def _app_problems(
    name: str, app: Mapping[str, Any], envs: Environments, people: Mapping[str, str]
) -> Found:
    at: Loc = ("apps", name)
    env = app.get("environment")
    yield from _environment(at, env, envs)
    production = envs.is_production(env if isinstance(env, str) else None)
    hosts = _host_names(app)
    yield from _hosts(at, app)
    for section in ("database", "deploy"):
        block = app.get(section)
        run_on = block.get("run_on") if isinstance(block, Mapping) else None
        if isinstance(run_on, str) and hosts and run_on not in hosts:
            fix = (
                (did_you_mean(run_on, hosts) + " ").lstrip()
                + "this app's hosts: "
                + ", ".join(hosts)
            )
            yield (*at, section, "run_on"), f"`{run_on}` is not one of this app's hosts", fix
    yield from _people_problems(at, app, people, production)
    yield from _auto_rollback(at, app, production)
    yield from _ssh(at, app)
    yield from _deploy(at, app)


def _environment(at: Loc, env: Any, envs: Environments) -> Found:
    if not isinstance(env, str) or envs.known(env):
        return
    hint = did_you_mean(env.strip().lower(), [*envs.production, *envs.non_production])
    fix = (
        (f"{hint} " if hint else "")
        + f"production: {', '.join(envs.production)} (four-eyes, no auto_rollback); "
        + f"not production: {', '.join(envs.non_production)}; "
        + "a new name goes under the top-level `environments:` key"
    )
    yield (*at, "environment"), f"unknown environment `{env}`", fix


def _host_names(app: Mapping[str, Any]) -> list[str]:
    hosts = app.get("hosts")
    if not isinstance(hosts, list):
        return []
    return [h["name"] for h in hosts if isinstance(h, Mapping) and isinstance(h.get("name"), str)]


def _hosts(at: Loc, app: Mapping[str, Any]) -> Found:
    hosts = app.get("hosts")
    if not isinstance(hosts, list):
        return
    seen: set[str] = set()
    for i, host in enumerate(hosts):
        if not isinstance(host, Mapping):
            continue
        name = host.get("name")
        if isinstance(name, str) and name in seen:
            yield (
                (*at, "hosts", i, "name"),
                f"host name `{name}` is used twice",
                ("give each host its own name"),
            )
        seen.add(str(name))
        if "address" not in host:
            yield (
                (*at, "hosts", i, "address"),
                "missing: the host's address",
                (
                    "add `address:` with its IP address or DNS name (Rewind never assumes a "
                    "host is its own machine)"
                ),
            )


def _people_problems(
    at: Loc, app: Mapping[str, Any], people: Mapping[str, str], production: bool
) -> Found:
    for key in ("operators", "approvers"):
        entries = app.get(key)
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, str) or _person_id(entry, people):
                continue
            hint = did_you_mean(entry.lower(), sorted(people))
            fix = (f"{hint} " if hint else "") + (
                "use a user id (U…, from the profile's ⋮ → Copy member ID), a user-group id "
                "(S…) or a name listed under `people:`"
            )
            yield (*at, key, i), f"`{entry}` names nobody: not an id, not in `people:`", fix
    approvers, operators = app.get("approvers", []), app.get("operators", [])
    if production and isinstance(approvers, list) and isinstance(operators, list):
        yield from _four_eyes(at, approvers, operators, people)


def _four_eyes(
    at: Loc, approvers: list[Any], operators: list[Any], people: Mapping[str, str]
) -> Found:
    """Production: someone must be able to approve what another person started."""
    loc = (*at, "approvers")
    if not approvers:
        yield (
            loc,
            "a production app with no approvers",
            (
                "four-eyes needs an approver other than the person who starts the rollback, so "
                "nothing could ever be approved: list at least one (a user group S…, or people)"
            ),
        )
        return
    ids = {_person_id(v, people) for v in [*approvers, *operators]}
    if None not in ids and len(ids) == 1 and not str(next(iter(ids))).startswith("S"):
        yield (
            loc,
            "four-eyes needs two people: only one may start or approve",
            (
                "the one person who may start a rollback could not approve it: add an approver "
                "or an operator (or name a user group S…)"
            ),
        )


def _auto_rollback(at: Loc, app: Mapping[str, Any], production: bool) -> Found:
    if "auto_rollback" not in app:
        return
    value, loc = app["auto_rollback"], (*at, "auto_rollback")
    if not isinstance(value, bool):
        yield loc, f"{value!r} is not true or false", "write true or false, without quotes"
    elif value and production:
        yield (
            loc,
            "auto_rollback is refused for production: a person decides there",
            ("remove it, or set a non-production environment"),
        )
    elif value and app.get("watch") is None:
        yield loc, "auto_rollback needs `watch`", "only a watched deploy can be rolled back"


def _ssh(at: Loc, app: Mapping[str, Any]) -> Found:
    ssh = app.get("ssh", {})
    if not isinstance(ssh, Mapping) or ssh.get("transport", "ssh") != "ssh":
        return
    if not ssh.get("known_hosts"):
        yield (
            (*at, "ssh", "known_hosts"),
            "ssh.known_hosts is required",
            ("host keys are always verified: give the known_hosts file the hosts' keys are in"),
        )


def _deploy(at: Loc, app: Mapping[str, Any]) -> Found:
    deploy = app.get("deploy")
    if not isinstance(deploy, Mapping):
        return
    strategy = deploy.get("strategy", "systemd")
    commands = deploy.get("commands", {})
    commands = commands if isinstance(commands, Mapping) else {}
    for name in commands:
        if name not in _COMMANDS:
            hint = did_you_mean(str(name), list(_COMMANDS))
            yield (
                (*at, "deploy", "commands", str(name)),
                f"unknown command `{name}`",
                (hint or "known: " + ", ".join(_COMMANDS)),
            )
    if strategy == "commands":
        missing = [c for c in _NEEDED if c not in commands]
        if missing:
            yield (
                (*at, "deploy", "commands"),
                (f"strategy 'commands' needs commands {', '.join(missing)}"),
                "add them (each a command run in the workdir)",
            )
    elif strategy in {"systemd", "docker-compose", "kubernetes"} and not deploy.get("service"):
        yield (
            (*at, "deploy", "service"),
            f"strategy '{strategy}' needs 'service'",
            ("the systemd unit, compose project or kubernetes deployment"),
        )
    if strategy == "kubernetes" and not deploy.get("image"):
        yield (
            (*at, "deploy", "image"),
            "strategy 'kubernetes' needs 'image'",
            ("the image repository, without a tag"),
        )
    if strategy == "kubernetes" and deploy.get("releases") is not None:
        yield (
            (*at, "deploy", "releases"),
            "strategy 'kubernetes' keeps no releases on hosts",
            "remove `releases` (the cluster keeps the images and the rollout history)",
        )
