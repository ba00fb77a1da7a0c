"""`python -m bot serve|worker|rollback|demo|check` (see CONTRACT)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.apps import AppsFile, load_apps
from bot.errors import ConfigError
from bot.settings import Settings


def _load(settings: Settings) -> AppsFile:
    try:
        return load_apps(settings.config_path)
    except ConfigError as exc:
        print(f"rewind: bad apps file: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from bot.app import build_runtime, web_app

    apps = _load(settings)
    rt = build_runtime(settings, apps)
    if args.socket_mode or settings.slack_app_token:
        return asyncio.run(_socket_mode(rt, with_worker=args.with_worker))
    if settings.slack_signing_secret is None:
        print("rewind: SLACK_SIGNING_SECRET is required in HTTP mode", file=sys.stderr)
        return 2
    web.run_app(web_app(rt, with_worker=args.with_worker), host="0.0.0.0", port=settings.port)
    return 0


async def _socket_mode(rt: object, *, with_worker: bool) -> int:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.app import Runtime, build_bolt, run_worker

    assert isinstance(rt, Runtime)
    token = rt.settings.slack_app_token
    if token is None:
        print("rewind: --socket-mode needs SLACK_APP_TOKEN (xapp-…)", file=sys.stderr)
        return 2
    handler = AsyncSocketModeHandler(build_bolt(rt), token.get_secret_value())
    tasks = [handler.start_async()]  # type: ignore[no-untyped-call]
    if with_worker:
        tasks.append(run_worker(rt))
    await asyncio.gather(*tasks)
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_runtime, run_worker

    rt = build_runtime(settings, _load(settings))

    async def main() -> None:
        try:
            await run_worker(rt)
        finally:
            await rt.aclose()

    asyncio.run(main())
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    from bot.terminal import run_rollback

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


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.export import run_export

    return asyncio.run(run_export(settings, args.incident))


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
    export = sub.add_parser(
        "export", help="an incident's full record and timeline as JSON (for audits)"
    )
    export.add_argument("incident")
    export.set_defaults(fn=_export)
    deployed = sub.add_parser("deployed", help="tell Rewind of a deploy (as POST /api/deploys)")
    deployed.add_argument("app")
    deployed.add_argument("version")
    deployed.add_argument("--by", default="", help="who deployed")
    deployed.add_argument("--url", default="", help="link to the pipeline run")
    deployed.set_defaults(fn=_deployed)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from bot.redis_conn import RedisUrlError

    try:
        result: int = args.fn(args, Settings())
    except RedisUrlError as exc:
        print(f"rewind: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
