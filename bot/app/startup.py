"""What `serve` and `worker` check before they start: a broken installation is refused at once,
with one line that names the setting and says what to do (exit 1, no traceback). Slack's tokens
are checked by the Slack adapter (`bot.fronts.slack.chat`).
"""

from __future__ import annotations

import errno
import logging
import socket

from pydantic import ValidationError

from bot.config.apps_file import AppsFile, load_apps
from bot.config.settings import Settings
from bot.workflow.errors import ConfigError, StartupError

log = logging.getLogger(__name__)

EXAMPLE = "config/apps.example.yaml"


__all__ = [
    "StartupError",
    "bind",
    "bind_metrics",
    "load",
    "paths_line",
]


def settings_from_env() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "a setting"
        raise StartupError(f"{name}: {err['msg']} (got {err.get('input')!r})") from None


def load(settings: Settings) -> AppsFile:
    path = settings.config_path
    if not path.exists():
        raise StartupError(
            f"no apps file at {path} (REWIND_CONFIG): copy {EXAMPLE} there and describe your "
            "apps in it, or set REWIND_CONFIG to your apps file."
        )
    try:
        return load_apps(path)
    except ConfigError as exc:
        raise StartupError(f"bad apps file: {exc}") from None


def paths_line(settings: Settings, apps: AppsFile) -> str:
    """Every path Rewind uses, absolute, for the start-up log line."""
    keys = sorted({k for a in apps.apps.values() for k in a.ssh.client_keys})
    known = sorted({a.ssh.known_hosts for a in apps.apps.values() if a.ssh.known_hosts})
    return (
        f"config {settings.config_path}, workspace {settings.workspace}, "
        f"incidents {apps.incidents.dir}, known_hosts {', '.join(known) or '-'}, "
        f"client_keys {', '.join(keys) or '-'}"
    )


def bind(port: int, setting: str, host: str = "0.0.0.0") -> socket.socket:
    """The listening socket, bound before anything starts; a port in use names its setting."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} is already in use ({setting}): stop what listens there "
                f"(another Rewind?) or set {setting} to a free port."
            ) from None
        raise StartupError(f"cannot listen on port {port} ({setting}): {exc.strerror}") from None
    sock.setblocking(False)
    return sock


METRICS_SPARE = 32  # further workers on one machine take the next free port above the default


def bind_metrics(port: int, *, pinned: bool) -> socket.socket:
    """A worker's /metrics socket. A port set in METRICS_PORT is that port or a refusal; the
    default 9300 moves up to the next free one, so that N workers on one machine all start
    (each says its port in its start-up line)."""
    if pinned:
        return bind(port, "METRICS_PORT")
    for candidate in range(port, port + METRICS_SPARE):
        try:
            return bind(candidate, "METRICS_PORT")
        except StartupError:
            continue
    raise StartupError(
        f"ports {port}–{port + METRICS_SPARE - 1} are all in use (METRICS_PORT): set "
        "METRICS_PORT to a free port for this worker."
    )
