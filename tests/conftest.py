"""Shared fixtures: real Redis, the Slack fake, real SSH hosts, and the bot itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import Bot, running_bot, settings_env, write_apps
from tests.slack_fake import SlackFake

# tests.ast_guard before anything draws a failure (see its doc); tests.processes before the other
# two: they import it, and pytest rewrites asserts only in a plugin it imports itself.
pytest_plugins = [
    "tests.ast_guard",
    "tests.live_report",
    "tests.processes",
    "tests.fixtures_hosts",
    "tests.redis_servers",
]


def own_redis_url() -> str:
    """The session's own Redis (tests/redis_servers.py), db 9; never a server it did not start."""
    # Imported here: pytest rewrites the asserts of a plugin only if it imports it first.
    from tests.redis_servers import session_redis_url

    return session_redis_url(9)


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = own_redis_url()
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
async def slack() -> AsyncIterator[SlackFake]:
    async with SlackFake() as fake:
        fake.usergroups["S0ONCALL"] = ["U0DAVE"]
        yield fake


@pytest.fixture
def make_bot(slack: SlackFake, redis_url: str, tmp_path: Path) -> Any:
    """`async with make_bot(apps_dict) as bot:` — the bot serving those apps."""

    def factory(apps: dict[str, Any], *, with_worker: bool = True) -> Any:
        config = write_apps(tmp_path / "apps.yaml", apps, tmp_path / "incidents")
        env = settings_env(slack, redis_url, config, tmp_path / "workspace")
        return running_bot(slack, env, with_worker=with_worker)

    return factory


@pytest.fixture
async def bot(make_bot: Any, ssh_env: Any) -> AsyncIterator[Bot]:
    """The bot serving `myapp` on two real SSH hosts at v1.5.0 (no database)."""
    async with make_bot({"myapp": ssh_env.app_config()}) as b:
        yield b
