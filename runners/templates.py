"""Command templates: the app's own or its deploy strategy's (`runners.strategies`), rendered
safely.

Every value put into a template is validated against what it may look like and shell-quoted,
so a version such as `v1; rm -rf /` can never become a command.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping

from bot.config.apps_file import AppConfig, HostConfig
from bot.workflow.errors import UserFacingError
from bot.workflow.version import SHAPE
from runners.strategies import strategy

_SAFE: dict[str, re.Pattern[str]] = {
    "ref": SHAPE,  # the values come from the facts (git's, a host's words): checked here too
    "version": SHAPE,
    "revision": re.compile(r"^[A-Za-z0-9_:+-]{1,64}$"),
    "backup": re.compile(r"^[A-Za-z0-9._/@:+-]{1,255}$"),
    "since": re.compile(r"^[0-9: TZ.+-]{1,40}$"),
}
_DEFAULT_SAFE = re.compile(r"^[A-Za-z0-9._/@:+=-]{0,255}$")


def template(app: AppConfig, name: str) -> str:
    """The app's command `name`: its own override, else the strategy's default ('' if none)."""
    return app.deploy.commands.get(name) or strategy(app.deploy.strategy).defaults.get(name, "")


def check_value(key: str, value: str) -> str:
    pattern = _SAFE.get(key, _DEFAULT_SAFE)
    if not pattern.match(value):
        raise UserFacingError(
            f"`{value[:60]}` is not a valid {key}: refusing to put it in a command"
        )
    return value


def render(command: str, values: Mapping[str, str]) -> str:
    """Fill `{placeholders}` with validated, shell-quoted values."""
    fields = {f for _, f, _, _ in string.Formatter().parse(command) if f}
    missing = fields - set(values)
    if missing:
        raise UserFacingError(f"command `{command}` uses unknown placeholder(s) {sorted(missing)}")
    quoted = {k: shlex.quote(check_value(k, values[k])) for k in fields}
    return command.format(**quoted)


def host_values(app: AppConfig, host: HostConfig, **extra: str) -> dict[str, str]:
    values = {
        "app": app.name,
        "host": host.name,
        "workdir": app.run_dir(host),  # with releases, `<workdir>/current`
        "service": app.deploy.service or app.name,
        "image": app.deploy.image or "",
        "namespace": app.deploy.namespace,
        **host.vars,
    }
    values.update(extra)
    return values


def in_workdir(app: AppConfig, host: HostConfig, command: str) -> str:
    """Wrap a rendered command so it runs in the host's workdir (with releases, in
    `<workdir>/current`: see `AppConfig.run_dir`)."""
    return in_dir(app.run_dir(host), command)


def in_dir(directory: str, command: str) -> str:
    return f"cd {shlex.quote(directory)} && {command}"


def build(
    app: AppConfig, host: HostConfig, name: str, *, cwd: str | None = None, **extra: str
) -> str | None:
    """The full command line for command `name` on `host`, or None if the app has none.
    `cwd`: run it there instead of the workdir (a new release's directory)."""
    tpl = template(app, name)
    if not tpl:
        return None
    command = render(tpl, host_values(app, host, **extra))
    return in_dir(cwd, command) if cwd is not None else in_workdir(app, host, command)
