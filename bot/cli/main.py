"""`rewind` / `python -m bot`: serve, worker, rollback, resume, status, list, demo, check."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import textwrap
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from pydantic import AliasChoices

from bot.app.startup import StartupError, settings_from_env
from bot.config.apps_file import AppsFile
from bot.config.settings import Settings
from bot.telemetry.logs import level_of
from bot.telemetry.logs import setup as setup_logging
from bot.telemetry.redaction import install_log_redaction
from bot.workflow.errors import NotAVersion
from bot.workflow.version import Version

if TYPE_CHECKING:
    pass

log = logging.getLogger("rewind")

# What each variable is for. The names, and their order, come from Settings (bot.config.settings):
# a setting added there shows in `rewind --help` even before it has a line here.
VARIABLES = {
    "SLACK_BOT_TOKEN": "bot token (xoxb-…); required for serve and worker",
    "SLACK_SIGNING_SECRET": "verifies Slack's HTTP requests; required for serve in HTTP mode",
    "SLACK_APP_TOKEN": "app-level token (xapp-…); enables Socket Mode",
    "SLACK_API_URL": "Slack Web API base URL (default https://slack.com/api/)",
    "REDIS_URL": "incidents, locks, queue, audit (default redis://localhost:6379/0); Sentinel: "
    "redis+sentinel://host1:26379,host2:26379/mymaster/0",
    "REWIND_CONFIG": "the apps file (default config/apps.yaml)",
    "PORT": "HTTP port of serve (default 3000)",
    "METRICS_PORT": "HTTP port of a worker's /metrics (default 9300, then the next free)",
    "LOG_FORMAT": "text or json (default text)",
    "LOG_LEVEL": "info or debug (default info; other libraries log at WARNING unless debug)",
    "REWIND_API_TOKEN": "bearer token of POST /api/deploys (unset: 401)",
    "GITHUB_WEBHOOK_SECRET": "verifies POST /api/github (unset: 401)",
    "REWIND_URL": "where `rewind deployed` posts when run away from the bot, e.g. in CI "
    "(unset: it writes to Redis itself)",
    "REWIND_WORKSPACE": "where the bot keeps its clones and files (default var/)",
    "REWIND_QUEUE": "name of the Redis queue of steps (default rewind)",
    "REWIND_HEARTBEAT": "seconds without a heartbeat before a dead worker's step is taken over "
    "(default 15)",
    "REWIND_SWEEP": "how often workers look for a dead worker's step, in seconds (default 5)",
    "REWIND_WEBHOOK_BACKOFF": "seconds before an outgoing webhook's first retry, then x4, 4 tries "
    "(default 1)",
    "REWIND_CONCURRENCY": "steps one worker runs at once (default 10)",
    "REWIND_WORKER_ID": "a worker's name in logs and Slack (default HOST:PID)",
    "REWIND_RETENTION": "how long closed incidents stay in Redis (default 400d)",
    "REWIND_DRAIN": "on SIGTERM, how long a worker lets an unrepeatable step end (default 600s)",
}


def variable_names() -> list[str]:
    """Every environment variable Settings reads, in its order."""
    names: list[str] = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            alias = alias.choices[0]
        if alias is not None:
            names.append(str(alias))
    return names


def environment_help(width: int = 100) -> str:
    """The `environment:` section of `rewind --help`: every variable, once."""
    names = variable_names()
    column = max(len(n) for n in names) + 4
    lines = ["environment (every variable rewind reads):"]
    for name in names:
        text = textwrap.wrap(VARIABLES.get(name, "(see the README)"), width - column)
        lines.append(f"  {name:<{column - 2}}{text[0]}")
        lines += [" " * column + more for more in text[1:]]
    return "\n".join(lines) + "\n"


SEE_TOP_HELP = "environment: every variable is listed once, in `rewind --help`.\n"

EXAMPLES = """\
examples:
  rewind demo --yes                         a full rollback of a sample app, nothing to set up
  rewind check --connect                    the apps file, then every host, Redis and Slack
  rewind serve                              the Slack endpoint on $PORT (/slack/events)
  rewind rollback myapp v1.4.2 --reason "checkout returns 500"
  rewind status myapp                       where myapp's incident stands
"""


def _version() -> str:
    try:
        return version("rewind")
    except PackageNotFoundError:  # run from a checkout that was never installed
        from bot import __version__

        return __version__


def _load(settings: Settings) -> AppsFile:
    from bot.app.startup import load

    return load(settings)


def _reach_redis(settings: Settings) -> None:
    """A Redis that cannot be reached at start is a refusal (exit 1, one line), not a process
    that retries forever and answers nobody."""
    from bot.store.connection import probe

    asyncio.run(probe(settings.redis_url))


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from bot.app.assembly import build_runtime, web_app
    from bot.app.startup import bind, paths_line
    from bot.fronts.slack.chat import check_app_token, check_bot_token

    apps = _load(settings)
    socket_mode = bool(args.socket_mode or settings.slack_app_token)
    if socket_mode and settings.slack_app_token is None:
        raise StartupError("--socket-mode needs SLACK_APP_TOKEN (xapp-…, an app-level token).")
    if not socket_mode and settings.slack_signing_secret is None:
        raise StartupError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode verifies every request with it (the "
            "app's Basic Information page), or set SLACK_APP_TOKEN for Socket Mode."
        )
    _reach_redis(settings)
    rt = build_runtime(settings, apps)
    who = asyncio.run(check_bot_token(rt.client))
    if socket_mode:
        token = settings.slack_app_token
        assert token is not None
        asyncio.run(check_app_token(rt.client, token.get_secret_value()))
    sock = bind(settings.port, "PORT")
    mode = "Socket Mode" if socket_mode else "HTTP"
    log.info(
        "rewind serve (%s, port %d) as %s: %s", mode, settings.port, who, paths_line(settings, apps)
    )
    if socket_mode:
        return asyncio.run(_socket_mode(rt, sock, with_worker=args.with_worker))
    web.run_app(web_app(rt, with_worker=args.with_worker), sock=sock, print=None)
    return 0


async def _socket_mode(rt: object, sock: socket.socket, *, with_worker: bool) -> int:
    """Slack over Socket Mode; /healthz, /metrics and the API still on PORT."""
    from aiohttp import web

    from bot.app.assembly import Runtime, build_slack, web_app

    assert isinstance(rt, Runtime) and rt.settings.slack_app_token is not None
    slack = build_slack(rt)
    handler = slack.socket_mode(rt.settings.slack_app_token.get_secret_value())
    # The web app's lifecycle recovers commands acked by a dead process and, at shutdown,
    # finishes Bolt's lazy listeners, as over HTTP; it gets no /slack/events route.
    runner = web.AppRunner(web_app(rt, with_worker=with_worker, socket_mode=slack))
    await runner.setup()  # starts the worker, if any, and the recovery of acked commands
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.SockSite(runner, sock).start()
        await handler.connect()
        await stop.wait()
    finally:
        await handler.close()
        await runner.cleanup()  # stops the worker and closes the runtime
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.assembly import build_runtime, run_worker
    from bot.app.startup import bind_metrics, paths_line
    from bot.fronts.slack.chat import check_bot_token

    apps = _load(settings)
    _reach_redis(settings)
    rt = build_runtime(settings, apps)
    who = asyncio.run(check_bot_token(rt.client))
    pinned = "metrics_port" in settings.model_fields_set
    metrics = bind_metrics(settings.metrics_port, pinned=pinned)
    metrics_port = int(metrics.getsockname()[1])
    log.info(
        "rewind worker %s as %s, /metrics on port %d: %s",
        settings.worker_id, who, metrics_port, paths_line(settings, apps),
    )  # fmt: skip

    async def main() -> None:
        try:
            await run_worker(rt, metrics_sock=metrics)
        finally:
            await rt.aclose()

    asyncio.run(main())
    return 0


def _versions(app: str, typed: list[str]) -> tuple[Version | None, tuple[tuple[str, Version], ...]]:
    """`VERSION`, or a group's `APP=VERSION …` (each a version, each app once), as on Slack."""
    if not any("=" in word for word in typed):
        if len(typed) > 1:
            raise ValueError(
                f"One version only: rewind rollback {app} VERSION (a group takes APP=VERSION "
                "for each of its apps)."
            )
        return (Version.parse(typed[0]) if typed else None), ()
    pins: list[tuple[str, Version]] = []
    for word in typed:
        member, equals, picked = word.partition("=")
        if not equals or not member or not picked:
            raise ValueError(
                f"{word!r}: a group's versions are APP=VERSION each, e.g. "
                f"rewind rollback {app} api=v1.4.2 worker=v2.0.1"
            )
        if any(name == member for name, _ in pins):
            raise ValueError(f"{member} is given two versions: pick one.")
        pins.append((member, Version.parse(picked)))
    return None, tuple(pins)


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.terminal import terminal_wiring
    from bot.fronts.terminal.front import RollbackArgs, run_plan, run_rollback

    try:
        version, pins = _versions(args.app, args.version)
    except (NotAVersion, ValueError) as exc:
        print(f"✗ {exc}")
        return 2
    rb = RollbackArgs(
        app=args.app,
        version=version,
        reason=args.reason,
        yes=args.yes,
        major=args.major,
        break_glass=args.break_glass,
        as_user=args.as_user,
        pins=pins,
    )
    wiring = terminal_wiring(settings)
    if args.plan:
        return asyncio.run(run_plan(settings, _load(settings), rb, wiring=wiring))
    return asyncio.run(run_rollback(settings, _load(settings), rb, wiring=wiring))


def _resume(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.terminal import terminal_wiring
    from bot.fronts.terminal.front import RollbackArgs, run_rollback

    rb = RollbackArgs(app="", version=None, reason="", as_user=args.as_user)
    wiring = terminal_wiring(settings)
    return asyncio.run(
        run_rollback(settings, _load(settings), rb, resume=args.incident, wiring=wiring)
    )


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.terminal import terminal_wiring
    from bot.fronts.terminal.front import show_status

    wiring = terminal_wiring(settings)
    return asyncio.run(
        show_status(settings, _load(settings), args.target, sys.stdout, wiring=wiring)
    )


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.terminal import terminal_wiring
    from bot.fronts.terminal.front import show_status

    wiring = terminal_wiring(settings)
    return asyncio.run(show_status(settings, _load(settings), "--list", sys.stdout, wiring=wiring))


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.demo import run_demo

    return run_demo(yes=args.yes, keep=args.keep)


def _deployed(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.deployed import run_deployed

    return asyncio.run(
        run_deployed(settings, _load, args.app, args.version, args.by, args.url, args.release)
    )


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.export import run_export

    return asyncio.run(run_export(settings, args.incident))


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.check import run_check

    return asyncio.run(run_check(settings, connect=args.connect))


def _sub(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str, example: str
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=text,
        description=f"{text}\n\nexample:\n  {example}",
        epilog=SEE_TOP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="rewind",
        description="Rewind rolls a failed deployment back and recovers the service, following "
        "the runbook in one Slack thread (or this terminal). `rewind` is `python -m bot`.",
        epilog=EXAMPLES + "\n" + environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"rewind {_version()}")
    sub = top.add_subparsers(dest="cmd", metavar="COMMAND")
    serve = _sub(sub, "serve", "the Slack endpoint on $PORT, path /slack/events",
                 "rewind serve --with-worker")  # fmt: skip
    serve.add_argument("--socket-mode", action="store_true",
                       help="Socket Mode instead of HTTP (needs SLACK_APP_TOKEN), e.g. behind "
                       "a firewall: rewind serve --socket-mode")  # fmt: skip
    serve.add_argument("--with-worker", action="store_true",
                       help="also run a worker in this process (small installs): "
                       "rewind serve --with-worker")  # fmt: skip
    serve.set_defaults(fn=_serve)
    _sub(sub, "worker", "run workflow steps from the Redis queue (run 1..N of them)",
         "rewind worker").set_defaults(fn=_worker)  # fmt: skip
    rb = _sub(sub, "rollback", "the same workflow from this terminal, for when Slack is down",
              'rewind rollback myapp v1.4.2 --reason "checkout returns 500"')  # fmt: skip
    rb.add_argument("app", metavar="APP", help="the app, as named in the apps file: myapp; or a "
                    "group of its `groups:` (all its apps in one incident): shop")  # fmt: skip
    rb.add_argument("version", metavar="VERSION", nargs="*",
                    help="tag or commit to go back to: v1.4.2 (default: the version before "
                    "the one deployed); for a group, APP=VERSION for any of its apps: "
                    "api=v1.4.2 worker=v2.0.1")  # fmt: skip
    rb.add_argument("--reason", default="", metavar="TEXT",
                    help='what broke (required; asked when left out): --reason "500s on '
                    'checkout"')  # fmt: skip
    rb.add_argument("--yes", action="store_true",
                    help="answer every question with roll back / approve (never in "
                    "production): --yes")  # fmt: skip
    rb.add_argument("--break-glass", action="store_true",
                    help="required for a production app (not for --plan); written to the audit "
                    "trail with your OS user and host: --break-glass")  # fmt: skip
    rb.add_argument("--as", dest="as_user", default="", metavar="NAME",
                    help="who you are in Slack (a name from the apps file's people, or a user "
                    "id), so four-eyes knows: --as carol")  # fmt: skip
    rb.add_argument(
        "--major",
        action="store_true",
        help="major outage: the report gets a postmortem template: --major",
    )
    rb.add_argument("--plan", action="store_true",
                    help="print the plan only (every command, the SQL), changing nothing: "
                    "--plan")  # fmt: skip
    rb.set_defaults(fn=_rollback)
    res = _sub(sub, "resume", "answer a paused incident's question from this terminal",
               "rewind resume 3fa2c1")  # fmt: skip
    res.add_argument("incident", metavar="INCIDENT", help="the incident id: 3fa2c1")
    res.add_argument(
        "--as", dest="as_user", default="", metavar="NAME", help="who you are in Slack: --as carol"
    )
    res.set_defaults(fn=_resume)
    st = _sub(sub, "status", "where an incident stands (the same answer as in Slack)",
              "rewind status myapp")  # fmt: skip
    st.add_argument("target", metavar="APP|INCIDENT", nargs="?", default="",
                    help="an app (its current or last incident) or an incident id: myapp; "
                    "none: every open incident")  # fmt: skip
    st.set_defaults(fn=_status)
    _sub(sub, "list", "open and recent incidents", "rewind list").set_defaults(fn=_list)
    demo = _sub(sub, "demo", "a full rollback of a bundled sample app: no Slack, Redis or SSH",
                "rewind demo --yes")  # fmt: skip
    demo.add_argument(
        "--yes",
        action="store_true",
        help="answer every question with roll back / approve: rewind demo --yes",
    )
    demo.add_argument("--keep", action="store_true",
                      help="leave the sample app running, with an apps file for it, and print "
                      "the commands that go on with the real CLI (and how to stop it): "
                      "rewind demo --yes --keep")  # fmt: skip
    demo.set_defaults(fn=_demo)
    check = _sub(sub, "check", "validate the apps file; exit 1 with every problem listed",
                 "rewind check --connect")  # fmt: skip
    check.add_argument("--connect", action="store_true",
                       help="also reach every host over SSH, Redis and Slack's auth.test: "
                       "rewind check --connect")  # fmt: skip
    check.set_defaults(fn=_check)
    deployed = _sub(
        sub,
        "deployed",
        "tell Rewind of a deploy (as POST /api/deploys)",
        "rewind deployed myapp v1.5.0 --by carol --url https://ci.example/run/42",
    )
    deployed.add_argument("app", metavar="APP", help="the app, as named in the apps file: myapp")
    deployed.add_argument("version", metavar="VERSION", help="the version deployed: v1.5.0")
    deployed.add_argument("--by", default="", metavar="WHO", help="who deployed: --by carol")
    deployed.add_argument(
        "--url", default="", metavar="URL", help="link to the pipeline run: --url https://ci/42"
    )
    deployed.add_argument(
        "--release", default="", metavar="ID",
        help="the release it is part of (apps of a group released together): --release r42",
    )  # fmt: skip
    deployed.set_defaults(fn=_deployed)
    export = _sub(
        sub,
        "export",
        "an incident's full record and timeline as JSON, for audits (closed incidents leave "
        "Redis after REWIND_RETENTION)",
        "rewind export 3fa2c1",
    )
    export.add_argument("incident", metavar="INCIDENT", help="the incident id: 3fa2c1")
    export.set_defaults(fn=_export)
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    if getattr(args, "fn", None) is None:
        top.print_help()
        return 2
    try:
        settings = settings_from_env()
        level = level_of(settings.log_level)
        if args.cmd not in {"serve", "worker"} and level > logging.DEBUG:
            level = logging.WARNING  # the terminal speaks for itself
        setup_logging(settings.log_format, secrets=settings.secret_values(), level=level)
        install_log_redaction()
        result: int = args.fn(args, settings)
    except StartupError as exc:
        print(f"rewind: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    raise SystemExit(main())
