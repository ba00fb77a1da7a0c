"""`python -m bot serve|worker|rollback|demo|check` (see CONTRACT)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.apps_file import AppsFile
from bot.logs import setup as setup_logging
from bot.settings import Settings
from bot.startup import StartupError, settings_from_env

log = logging.getLogger("rewind")


def _load(settings: Settings) -> AppsFile:
    from bot.startup import load

    return load(settings)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from bot.assembly import build_runtime, web_app
    from bot.startup import bind, check_app_token, check_bot_token, paths_line

    apps = _load(settings)
    socket_mode = bool(args.socket_mode or settings.slack_app_token)
    if socket_mode and settings.slack_app_token is None:
        raise StartupError("--socket-mode needs SLACK_APP_TOKEN (xapp-…, an app-level token).")
    if not socket_mode and settings.slack_signing_secret is None:
        raise StartupError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode verifies every request with it (the "
            "app's Basic Information page), or set SLACK_APP_TOKEN for Socket Mode."
        )
    rt = build_runtime(settings, apps)
    who = asyncio.run(check_bot_token(rt.client))
    mode = "Socket Mode" if socket_mode else f"HTTP on port {settings.port}"
    log.info("rewind serve (%s) as %s: %s", mode, who, paths_line(settings, apps))
    if socket_mode:
        token = settings.slack_app_token
        assert token is not None
        asyncio.run(check_app_token(rt.client, token.get_secret_value()))
        return asyncio.run(_socket_mode(rt, with_worker=args.with_worker))
    sock = bind(settings.port, "PORT")
    web.run_app(web_app(rt, with_worker=args.with_worker), sock=sock, print=None)
    return 0


async def _socket_mode(rt: object, *, with_worker: bool) -> int:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.assembly import Runtime, build_bolt, run_worker

    assert isinstance(rt, Runtime)
    token = rt.settings.slack_app_token
    assert token is not None
    handler = AsyncSocketModeHandler(build_bolt(rt), token.get_secret_value())
    tasks = [handler.start_async()]  # type: ignore[no-untyped-call]
    if with_worker:
        tasks.append(run_worker(rt))
    try:
        await asyncio.gather(*tasks)
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await rt.aclose()
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from bot.assembly import build_runtime, run_worker
    from bot.startup import bind, check_bot_token, paths_line

    apps = _load(settings)
    rt = build_runtime(settings, apps)
    who = asyncio.run(check_bot_token(rt.client))
    metrics = bind(settings.metrics_port, "METRICS_PORT")
    log.info(
        "rewind worker %s as %s, /metrics on port %d: %s",
        settings.worker_id, who, settings.metrics_port, paths_line(settings, apps),
    )  # fmt: skip

    async def main() -> None:
        try:
            await run_worker(rt, metrics_sock=metrics)
        finally:
            await rt.aclose()

    asyncio.run(main())
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    from bot.terminal.front import run_rollback

    return asyncio.run(
        run_rollback(
            settings, _load(settings), args.app, args.version, args.reason, args.yes, args.major
        )
    )


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    return run_demo(yes=args.yes)


def _deployed(args: argparse.Namespace, settings: Settings) -> int:
    from bot.watch.cli import run_deployed

    return asyncio.run(run_deployed(settings, _load, args.app, args.version, args.by, args.url))


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.check import run_check

    return asyncio.run(run_check(settings, connect=args.connect))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Rewind rollback bot")
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="Slack endpoint on $PORT (/slack/events)")
    serve.add_argument("--socket-mode", action="store_true")
    serve.add_argument("--with-worker", action="store_true")
    serve.set_defaults(fn=_serve)
    sub.add_parser("worker", help="run workflow steps from the queue").set_defaults(fn=_worker)
    rb = sub.add_parser("rollback", help="the same workflow from a terminal")
    rb.add_argument("app")
    rb.add_argument("version", nargs="?")
    rb.add_argument("--reason", default="")
    rb.add_argument("--yes", action="store_true", help="approve every prompt")
    rb.add_argument("--major", action="store_true", help="major outage: add a postmortem")
    rb.set_defaults(fn=_rollback)
    demo = sub.add_parser("demo", help="full rollback of a bundled sample app, no Slack needed")
    demo.add_argument("--yes", action="store_true")
    demo.set_defaults(fn=_demo)
    check = sub.add_parser("check", help="validate the config (and --connect to everything)")
    check.add_argument("--connect", action="store_true")
    check.set_defaults(fn=_check)
    deployed = sub.add_parser("deployed", help="tell Rewind of a deploy (as POST /api/deploys)")
    deployed.add_argument("app")
    deployed.add_argument("version")
    deployed.add_argument("--by", default="", help="who deployed")
    deployed.add_argument("--url", default="", help="link to the pipeline run")
    deployed.set_defaults(fn=_deployed)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env()
        setup_logging(settings.log_format, secrets=settings.secret_values())
        result: int = args.fn(args, settings)
    except StartupError as exc:
        print(f"rewind: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    raise SystemExit(main())
