"""`/rollback APP VERSION` when the app's repo cannot be read: plain words, git's own (redacted),
and what to do; never "something went wrong". And a repo that moves is simply cloned afresh."""

from __future__ import annotations

import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.sample.build import SampleRepo
from tests.harness import INCIDENT_CHANNEL


def app(repo: str) -> dict[str, Any]:
    return {
        "environment": "staging",
        "repo": repo,
        "incident_channel": INCIDENT_CHANNEL,
        "operators": ["U0CAROL"],
        "ssh": {"transport": "local"},
        "hosts": [{"name": "web1", "address": "127.0.0.1"}],
        "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
    }


@pytest.fixture
async def git_server_401() -> AsyncIterator[str]:
    """A git host over HTTP that wants credentials the bot does not have."""

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="git"'})

    app_ = web.Application()
    app_.router.add_route("*", "/{path:.*}", refuse)
    runner = web.AppRunner(app_, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://rewind:s3cr3t-pa55@127.0.0.1:{port}/acme/myapp.git"
    await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_each_known_failure_of_the_version_check_is_said_in_plain_words(
    make_bot: Any, tmp_path: Path, git_server_401: str
) -> None:
    apps = {
        "gone": app(str(tmp_path / "no-such-repo.git")),
        "locked": app(git_server_401),
        "down": app(f"http://127.0.0.1:{closed_port()}/acme/myapp.git"),
    }
    expected = {
        "gone": ("cannot be reached", "does not exist", "`repo` URL"),
        "locked": ("did not accept the bot's credentials", "Authentication failed", "access"),
        "down": ("cannot be reached", "Failed to connect", "the network"),
    }
    async with make_bot(apps, with_worker=False) as bot:
        for name, words in expected.items():
            _, reply_to = await bot.command(f"{name} v1.4.2 checkout returns 500")
            reply = await bot.reply(reply_to)
            assert reply.startswith(":warning: Cannot check `v1.4.2`"), reply
            for word in words:
                assert word in reply, (name, word, reply)
            assert "run the command again" in reply and "Nothing was started" in reply
            assert "Something went wrong" not in reply
        assert "s3cr3t-pa55" not in str(bot.slack.calls)
        assert not bot.slack.messages(INCIDENT_CHANNEL)


async def test_fetch_failure_then_the_repo_moves(
    make_bot: Any, sample_repo: SampleRepo, tmp_path: Path
) -> None:
    origin = sample_repo.origin
    async with make_bot({"myapp": app(str(origin))}, with_worker=False) as bot:
        _, first = await bot.command("myapp v9.9.9 checkout returns 500")
        assert "neither a tag nor a commit" in await bot.reply(first)  # cloned and read
        moved = origin.parent / "moved.git"
        shutil.move(origin, moved)  # the old URL stops answering: the next fetch fails
        _, second = await bot.command("myapp v9.9.9 checkout returns 500")
        reply = await bot.reply(second)
        assert f"fetching {origin} failed" in reply, reply
        assert "does not appear to be a git repository" in reply
        assert "Something went wrong" not in reply

    # The apps file now names the new place: a clone of its own, no manual clean-up.
    async with make_bot({"myapp": app(str(moved))}, with_worker=False) as bot:
        _, third = await bot.command("myapp v9.9.9 checkout returns 500")
        assert "neither a tag nor a commit" in await bot.reply(third)
    clones = sorted(p.name for p in (tmp_path / "workspace" / "repos-check").iterdir())
    assert len(clones) == 2 and all(c.startswith("myapp-") for c in clones)
