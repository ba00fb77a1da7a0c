"""What `serve` and `worker` check before they start: a broken installation is refused at once,
with one line that names the setting and says what to do (exit 1, no traceback).
"""

from __future__ import annotations

import errno
import logging
import socket

from pydantic import ValidationError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.apps_file import AppsFile, load_apps
from bot.config.settings import Settings
from bot.workflow.errors import ConfigError, StartupError

log = logging.getLogger(__name__)

EXAMPLE = "config/apps.example.yaml"
# Slack's answers that mean "this token is not a valid one": nothing will work until it is fixed.
_BAD_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
_BAD_APP_TOKEN = _BAD_TOKEN | {"not_allowed_token_type", "invalid_token_type"}


__all__ = [
    "StartupError",
    "bind",
    "bind_metrics",
    "check_app_token",
    "check_bot_token",
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


async def check_bot_token(client: AsyncWebClient) -> str:
    """auth.test: refuse a token Slack refuses; returns who the bot is, for the log."""
    try:
        resp = await client.auth_test()
    except SlackApiError as exc:
        error = _error_of(exc)
        if error in _BAD_TOKEN:
            raise StartupError(
                f"Slack refuses SLACK_BOT_TOKEN ({error}): set it to the app's Bot User OAuth "
                "Token (xoxb-…, on the app's OAuth & Permissions page; reinstall the app if it "
                "was revoked)."
            ) from None
        log.warning("Slack auth.test answered %s; starting anyway", error)
        return "?"
    except Exception as exc:  # the network: Slack may come back, the steps retry their calls
        log.warning("Slack cannot be reached for auth.test (%s); starting anyway", _short(exc))
        return "?"
    return f"{resp.get('user', '?')} in {resp.get('team', '?')}"


async def check_app_token(client: AsyncWebClient, app_token: str) -> None:
    """Socket Mode: apps.connections.open with the app-level token, once, before the loop
    that would otherwise retry a refused token forever."""
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = _error_of(exc)
        if error in _BAD_APP_TOKEN:
            raise StartupError(
                f"Slack refuses SLACK_APP_TOKEN ({error}): set it to an app-level token "
                "(xapp-…, Basic Information → App-Level Tokens, scope connections:write), "
                "with Socket Mode enabled for the app."
            ) from None
        raise StartupError(
            f"Slack refuses Socket Mode ({error}): enable Socket Mode in the app's settings, "
            "or unset SLACK_APP_TOKEN to serve over HTTP."
        ) from None


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


def _error_of(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    except Exception:
        return f"HTTP {getattr(exc.response, 'status_code', '?')}"


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]
