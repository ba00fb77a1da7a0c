"""Shared fixtures: real Redis, the Slack fake, real SSH hosts, and the bot itself."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.harness import Bot, running_bot, settings_env, write_apps
from tests.slack_fake import SlackFake

# tests.processes first: the other two import it, and pytest rewrites asserts only in a plugin
# it imports itself.
pytest_plugins = ["tests.processes", "tests.fixtures_hosts", "tests.redis_servers"]


def _own_database(url: str, worker: str) -> str:
    """Tests flush their database: each pytest-xdist worker (gw0, gw1, …) gets the next one."""
    if not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    return f"{base}/{int(db or 0) + int(worker[2:])}"


# Tests flush this database; another run beside them (a bench, a second checkout) picks its own.
REDIS_URL = _own_database(
    os.environ.get("REWIND_TEST_REDIS_URL", "redis://127.0.0.1:6379/9"),
    os.environ.get("PYTEST_XDIST_WORKER", ""),
)


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
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
