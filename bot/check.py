"""`python -m bot check [--connect]`: is the config sound, and can we reach everything?"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.apps_file import AppConfig, AppsFile, load_apps
from bot.errors import ConfigError, HostError, UserFacingError
from bot.settings import Settings
from runners import templates
from runners.git import redact
from runners.local import runner_for

_SAMPLE = {"ref": "v1.0.0", "version": "v1.0.0", "backup": "/tmp/b.sql", "revision": "abc123",
           "since": "2026-01-01 00:00:00"}  # fmt: skip


def check_templates(app: AppConfig) -> list[str]:
    problems = []
    names = ["fetch", "install", "restart", "status", "logs", "version", "stop", "start"]
    for host in app.hosts:
        for name in names:
            try:
                templates.build(app, host, name, **_SAMPLE)
            except UserFacingError as exc:
                problems.append(f"apps.{app.name}.deploy.commands.{name}: {exc}")
        break  # the same templates for every host; one is enough
    return problems


async def check_connect(settings: Settings, apps: AppsFile) -> list[str]:
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
    from bot.store_redis import RedisStore, connect

    store = RedisStore(connect(settings.redis_url))
    try:
        if not await asyncio.wait_for(store.ping(), 10):
            problems.append(f"Redis at {redact(settings.redis_url)}: no answer")
    except (TimeoutError, OSError) as exc:
        problems.append(f"Redis at {redact(settings.redis_url)}: {exc}")
    finally:
        await store.r.aclose()
    problems.extend(await _check_slack(settings))
    return problems


async def _check_slack(settings: Settings) -> list[str]:
    if settings.slack_bot_token is None:
        return ["Slack: SLACK_BOT_TOKEN is not set"]
    from slack_sdk.errors import SlackApiError

    from handlers.notifier import make_client

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
    if connect and not problems:
        problems.extend(await check_connect(settings, apps))
    for name, app in apps.apps.items():
        print(f"• {name}: {app.environment}, {len(app.hosts)} host(s), {app.deploy.strategy}"
              + (", database" if app.database else ""), file=out)  # fmt: skip
    if problems:
        print(f"✗ {len(problems)} problem(s):", file=out)
        for p in problems:
            print(f"  - {p}", file=out)
        return 1
    print("✓ all well" + (" (hosts, Redis and Slack reached)" if connect else ""), file=out)
    return 0
