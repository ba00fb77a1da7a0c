"""Deploys reported to Rewind: API token, GitHub signature, the CLI; refusals record nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.watch.deploys import sign
from tests.harness import Bot, running_bot, settings_env, write_apps
from tests.slack_fake import SlackFake

TOKEN = "test-api-token-0123456789"
GH_SECRET = "test-github-secret"


def app_config(**extra: Any) -> dict[str, Any]:
    """An app that is recorded, not watched: no host is reached in these tests."""
    return {
        "environment": "staging",
        "repo": "/nonexistent/myapp.git",
        "incident_channel": "C0INCIDENT",
        "operators": ["U0CAROL"],
        "approvers": ["U0ALICE"],
        "ssh": {"known_hosts": "/dev/null"},
        "hosts": [{"name": "web1", "address": "127.0.0.1"}],
        "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
        **extra,
    }


@pytest.fixture
async def api_bot(
    slack: SlackFake, redis_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Bot]:
    secrets: dict[str, str] = getattr(request, "param", {"token": TOKEN, "github": GH_SECRET})
    config = write_apps(tmp_path / "apps.yaml", {"myapp": app_config()}, tmp_path / "incidents")
    env = settings_env(slack, redis_url, config, tmp_path / "workspace")
    if secrets.get("token"):
        env["REWIND_API_TOKEN"] = secrets["token"]
    if secrets.get("github"):
        env["GITHUB_WEBHOOK_SECRET"] = secrets["github"]
    async with running_bot(slack, env, with_worker=False) as bot:
        yield bot


def recorded(redis_url: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [json.loads(raw) for raw in client.lrange("rewind:deploys:myapp", 0, -1)]
    finally:
        client.close()


async def post_deploy(bot: Bot, body: Any, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with bot.session.post(f"{bot.url}/api/deploys", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


def deployment_status(state: str = "success", **payload: Any) -> dict[str, Any]:
    return {
        "action": "created",
        "deployment_status": {
            "state": state,
            "target_url": "https://github.com/acme/myapp/actions/runs/42",
            "creator": {"login": "octocat"},
        },
        "deployment": {
            "ref": "v1.5.0",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "environment": "staging",
            "payload": payload,
            "creator": {"login": "octocat"},
        },
        "repository": {"name": "myapp", "full_name": "acme/myapp"},
    }


async def post_github(
    bot: Bot, body: dict[str, Any], secret: str | None = GH_SECRET, event: str = "deployment_status"
) -> tuple[int, Any]:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event}
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, raw)
    async with bot.session.post(f"{bot.url}/api/github", data=raw, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_deploy_with_the_token_is_recorded(api_bot: Bot, redis_url: str) -> None:
    status, body = await post_deploy(
        api_bot,
        {"app": "myapp", "version": "v1.5.0", "by": "ci", "url": "https://ci.example/run/7"},
    )
    assert status == 202, body
    assert body["app"] == "myapp" and body["version"] == "v1.5.0"
    assert body["watch"] is None  # the app has no `watch:`
    [deploy] = recorded(redis_url)
    assert deploy["version"] == "v1.5.0" and deploy["by"] == "ci" and deploy["source"] == "api"


@pytest.mark.parametrize(
    "token", [None, "", "wrong-token", TOKEN + "x", TOKEN[:-1]], ids=["none", "empty", "wrong",
                                                                       "longer", "shorter"]
)  # fmt: skip
async def test_without_the_right_token_401_and_nothing_recorded(
    api_bot: Bot, redis_url: str, token: str | None
) -> None:
    status, body = await post_deploy(api_bot, {"app": "myapp", "version": "v1.5.0"}, token)
    assert status == 401 and "unauthorized" in body["error"]
    assert recorded(redis_url) == []


@pytest.mark.parametrize("api_bot", [{}], indirect=True)
async def test_no_token_configured_means_every_call_is_refused(
    api_bot: Bot, redis_url: str
) -> None:
    for token in (TOKEN, "", "None"):
        status, body = await post_deploy(api_bot, {"app": "myapp", "version": "v1"}, token)
        assert status == 401 and "REWIND_API_TOKEN is not set" in body["error"]
    status, body = await post_github(api_bot, deployment_status())
    assert status == 401 and "GITHUB_WEBHOOK_SECRET is not set" in body["error"]
    assert recorded(redis_url) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"app": "nope", "version": "v1"}, "unknown app"),
        ({"app": "myapp", "version": "v1; rm -rf /"}, "not a version"),
        ({"app": "myapp", "version": "$(id)"}, "not a version"),
        ({"app": "myapp"}, "version"),
        ({"app": "myapp", "version": "v1", "environment": "production"}, "staging"),
        ({"app": "myapp", "version": "v1", "url": "javascript:alert(1)"}, "url"),
        ({"app": "myapp", "version": "v1", "by": "<!channel>"}, "by"),
        (["myapp", "v1"], "JSON object"),
    ],
)
async def test_bad_values_are_refused_like_rollback_does(
    api_bot: Bot, redis_url: str, body: Any, says: str
) -> None:
    status, answer = await post_deploy(api_bot, body)
    assert status == 422 and says in answer["error"], answer
    assert recorded(redis_url) == []


async def test_github_deployment_status_signed(api_bot: Bot, redis_url: str) -> None:
    status, body = await post_github(api_bot, deployment_status(), event="ping")
    assert status == 200 and body["pong"]
    status, body = await post_github(api_bot, deployment_status("in_progress"))
    assert status == 202 and "ignored" in body
    status, body = await post_github(api_bot, deployment_status(version="v1.5.1"))
    assert status == 202 and body["version"] == "v1.5.1"
    [deploy] = recorded(redis_url)
    assert deploy["by"] == "octocat" and deploy["source"] == "github"
    assert deploy["url"] == "https://github.com/acme/myapp/actions/runs/42"


@pytest.mark.parametrize(
    "secret", [None, "", "another-secret"], ids=["unsigned", "empty", "forged"]
)
async def test_github_forged_or_unsigned_401_and_nothing_recorded(
    api_bot: Bot, redis_url: str, secret: str | None
) -> None:
    status, body = await post_github(api_bot, deployment_status(), secret=secret)
    assert status == 401 and "unauthorized" in body["error"]
    assert recorded(redis_url) == []


async def test_github_body_changed_after_signing_is_refused(api_bot: Bot, redis_url: str) -> None:
    raw = json.dumps(deployment_status()).encode()
    headers = {"X-GitHub-Event": "deployment_status", "X-Hub-Signature-256": sign(GH_SECRET, raw)}
    tampered = raw.replace(b"v1.5.0", b"v1.5.9")
    async with api_bot.session.post(
        f"{api_bot.url}/api/github", data=tampered, headers=headers
    ) as resp:
        assert resp.status == 401
    assert recorded(redis_url) == []


async def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the bot answering the CLI runs on this test's event loop.
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "deployed", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_records_directly_or_through_the_api(api_bot: Bot, redis_url: str) -> None:
    env = {k: v for k, v in api_bot.env.items() if k not in {"REWIND_API_TOKEN"}}
    done = await run_cli(env, "myapp", "v1.5.0", "--by", "gitlab", "--url", "https://ci.example/1")
    assert done.returncode == 0, done.stderr
    assert "recorded" in done.stdout and "not watched" in done.stdout
    refused = await run_cli(env, "myapp", "v1;reboot")
    assert refused.returncode == 2 and "not a version" in refused.stderr
    remote = {"REWIND_URL": api_bot.url, "REWIND_API_TOKEN": TOKEN}
    done = await run_cli(remote, "myapp", "v1.5.1", "--by", "gha")
    assert done.returncode == 0, done.stderr
    forged = await run_cli({**remote, "REWIND_API_TOKEN": "nope"}, "myapp", "v1.5.2")
    assert forged.returncode == 1 and "401" in forged.stderr
    versions = [(d["version"], d["source"]) for d in recorded(redis_url)]
    assert versions == [("v1.5.1", "api"), ("v1.5.0", "cli")]
