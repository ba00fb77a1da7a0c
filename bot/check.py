"""`python -m bot check [--connect]`: is the config sound, and can we reach everything?"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from redis.exceptions import RedisError

from bot.apps import AppConfig, AppsFile, load_apps
from bot.errors import ConfigError, HostError, UserFacingError
from bot.settings import Settings
from runners import commands
from runners.local import runner_for

_SAMPLE = {"ref": "v1.0.0", "version": "v1.0.0", "backup": "/tmp/b.sql", "revision": "abc123",
           "since": "2026-01-01 00:00:00"}  # fmt: skip


def check_templates(app: AppConfig) -> list[str]:
    problems = []
    names = ["fetch", "install", "restart", "status", "logs", "version", "stop", "start"]
    for host in app.hosts:
        for name in names:
            try:
                commands.build(app, host, name, **_SAMPLE)
            except UserFacingError as exc:
                problems.append(f"apps.{app.name}.deploy.commands.{name}: {exc}")
        break  # the same templates for every host; one is enough
    return problems


async def check_connect(
    settings: Settings, apps: AppsFile, warnings: list[str] | None = None
) -> list[str]:
    problems: list[str] = []
    for app in apps.apps.values():
        runner = runner_for(app)
        try:
            results = await asyncio.gather(
                *(runner.run(h.name, "true", timeout=15) for h in app.hosts),
                return_exceptions=True,
            )
            for host, res in zip(app.hosts, results, strict=True):
                if isinstance(res, HostError):
                    problems.append(f"{app.name}/{host.name}: {res}")
                elif isinstance(res, BaseException):
                    problems.append(f"{app.name}/{host.name}: {res!r}")
        finally:
            await runner.close()
    problems.extend(await check_redis(settings, warnings))
    problems.extend(await _check_slack(settings))
    return problems


async def check_redis(settings: Settings, warnings: list[str] | None = None) -> list[str]:
    """Redis answers; a warning when it would lose the open incidents on a restart."""
    from bot.redis_conn import RedisUrlError, connect, parse_url, persistence_warning

    try:
        where = parse_url(settings.redis_url).redacted()
        client = connect(settings.redis_url)
    except RedisUrlError as exc:
        return [str(exc)]
    try:
        await asyncio.wait_for(client.ping(), 10)
        warning = await asyncio.wait_for(persistence_warning(client), 10)
        if warning and warnings is not None:
            warnings.append(f"Redis at {where}: {warning}")
    except (TimeoutError, OSError, RedisError) as exc:
        return [f"Redis at {where}: no answer ({exc or type(exc).__name__})"]
    finally:
        await client.aclose()
    return []


async def _check_slack(settings: Settings) -> list[str]:
    if settings.slack_bot_token is None:
        return ["Slack: SLACK_BOT_TOKEN is not set"]
    from slack_sdk.errors import SlackApiError

    from bot.slack_notifier import make_client

    client = make_client(settings.token(), settings.slack_api_url)
    try:
        await client.auth_test()
    except SlackApiError as exc:
        return [f"Slack auth.test: {exc.response.get('error')}"]
    except Exception as exc:
        return [f"Slack auth.test at {settings.slack_api_url}: {exc}"]
    return []


async def run_check(settings: Settings, *, connect: bool, out: TextIO = sys.stdout) -> int:
    try:
        apps = load_apps(settings.config_path)
    except ConfigError as exc:
        print(f"✗ {exc}", file=out)
        return 1
    problems = [p for app in apps.apps.values() for p in check_templates(app)]
    warnings: list[str] = []
    if connect and not problems:
        problems.extend(await check_connect(settings, apps, warnings))
    for name, app in apps.apps.items():
        print(f"• {name}: {app.environment}, {len(app.hosts)} host(s), {app.deploy.strategy}"
              + (", database" if app.database else ""), file=out)  # fmt: skip
    for w in warnings:
        print(f"⚠ {w}", file=out)
    if problems:
        print(f"✗ {len(problems)} problem(s):", file=out)
        for p in problems:
            print(f"  - {p}", file=out)
        return 1
    print("✓ all well" + (" (hosts, Redis and Slack reached)" if connect else ""), file=out)
    return 0
