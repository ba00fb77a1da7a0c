"""The Slack fake, driven by the real slack_sdk client (and the signing helpers)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.slack_fake import (
    BOT_USER_ID,
    SlackFake,
    SlackFakeTimeout,
    all_text,
    buttons,
    click,
    send_action,
    send_command,
    sign,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0INCIDENT"


@pytest.fixture
def client(slack: SlackFake) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.api_url)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def decision_blocks() -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": {"type": "plain_text", "text": "Rollback of myapp"}},
        section("*Deployed:* v1.4.0"),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Target:* v1.3.2"},
                {"type": "mrkdwn", "text": "*Hosts:* web1, web2"},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "started by <@U0CAROL>"}]},
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": "rollback",
                    "value": "INC-1",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Roll back to v1.3.2"},
                },
                {
                    "type": "button",
                    "action_id": "fix_forward",
                    "value": "INC-1",
                    "text": {"type": "plain_text", "text": "Fix forward"},
                },
            ],
        },
    ]


async def test_post_update_thread_permalink(slack: SlackFake, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert auth["user_id"] == BOT_USER_ID

    parent = await client.chat_postMessage(
        channel=CHANNEL, text="Incident INC-1", blocks=decision_blocks()
    )
    ts = parent["ts"]
    assert parent["channel"] == CHANNEL
    assert parent["message"]["text"] == "Incident INC-1"

    r1 = await client.chat_postMessage(channel=CHANNEL, text="fetch: ok", thread_ts=ts)
    r2 = await client.chat_postMessage(channel=CHANNEL, text="install: ok", thread_ts=ts)
    assert ts < r1["ts"] < r2["ts"]  # unique, increasing, same width

    # Updating with text only keeps the blocks (as Slack does); [] removes them.
    await client.chat_update(channel=CHANNEL, ts=ts, text="Incident INC-1 (running)")
    msg = slack.message(CHANNEL, ts)
    assert msg["text"] == "Incident INC-1 (running)"
    assert len(msg["blocks"]) == 5
    assert "edited" in msg

    assert [m["text"] for m in slack.thread(CHANNEL, ts)] == ["fetch: ok", "install: ok"]
    assert [m["ts"] for m in slack.messages(CHANNEL, top_level=True)] == [ts]
    assert slack.messages(CHANNEL)[1]["thread_ts"] == ts

    seen = all_text(msg)
    for piece in ("Rollback of myapp", "v1.4.0", "*Hosts:* web1, web2", "<@U0CAROL>"):
        assert piece in seen
    assert "Roll back to v1.3.2" in seen and "Fix forward" in seen
    assert [b.action_id for b in buttons(msg)] == ["rollback", "fix_forward"]

    link = await client.chat_getPermalink(channel=CHANNEL, message_ts=ts)
    assert link["permalink"] == f"https://fake.slack.com/archives/{CHANNEL}/p{ts.replace('.', '')}"

    replies = await client.conversations_replies(channel=CHANNEL, ts=ts)
    assert [m["ts"] for m in replies["messages"]] == [ts, r1["ts"], r2["ts"]]
    assert replies["messages"][0]["reply_count"] == 2
    history = await client.conversations_history(channel=CHANNEL)
    assert [m["ts"] for m in history["messages"]] == [ts]

    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"

    call = await slack.wait_for("chat.update")
    assert call.args["channel"] == CHANNEL
    assert call.headers["Authorization"] == "Bearer xoxb-test"
    assert [c.method for c in slack.calls_to("chat.postMessage")] == ["chat.postMessage"] * 3
    assert [e.error for e in slack.errors_returned] == ["message_not_found"]


async def test_other_methods(slack: SlackFake, client: AsyncWebClient) -> None:
    slack.usergroups["S0ONCALL"] = ["U1", "U2"]
    members = await client.usergroups_users_list(usergroup="S0ONCALL")
    assert members["users"] == ["U1", "U2"]
    user = await client.users_info(user="U0CAROL")
    assert user["user"]["id"] == "U0CAROL"
    eph = await client.chat_postEphemeral(channel=CHANNEL, user="U0CAROL", text="Not allowed")
    assert eph["message_ts"]
    assert slack.ephemerals[0]["text"] == "Not allowed"
    await client.views_publish(
        user_id="U0CAROL", view={"type": "home", "blocks": [section("Incidents")]}
    )
    assert slack.views["U0CAROL"]["blocks"][0]["text"]["text"] == "Incidents"
    with pytest.raises(SlackApiError) as err:
        await client.api_call("chat.nonsense")
    assert err.value.response["error"] == "unknown_method"


async def test_files_upload_v2_lands_in_thread(slack: SlackFake, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="Incident")
    result = await client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=parent["ts"],
        content="step output\nline 2\n",
        filename="fetch.log",
        title="fetch on web1",
        initial_comment="full output",
    )
    assert result["file"]["id"] == slack.files[0].id
    (f,) = slack.files
    assert (f.title, f.filename, f.channel_id, f.thread_ts) == (
        "fetch on web1",
        "fetch.log",
        CHANNEL,
        parent["ts"],
    )
    assert f.text == "step output\nline 2\n"
    (share,) = slack.thread(CHANNEL, parent["ts"])
    assert "fetch on web1" in all_text(share) and "full output" in all_text(share)
    assert [c.method for c in slack.calls] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload_url",
        "files.completeUploadExternal",
    ]
    slack.assert_no_errors()


async def test_legacy_files_upload(slack: SlackFake, client: AsyncWebClient) -> None:
    with pytest.warns(UserWarning):  # slack_sdk nags towards files_upload_v2
        await client.files_upload(channels=CHANNEL, content="hello", title="t", filename="a.txt")
    assert slack.files[0].text == "hello"
    assert slack.files[0].legacy


async def test_rate_limit_retried_with_handler(slack: SlackFake) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    started = time.monotonic()
    resp = await client.chat_postMessage(channel=CHANNEL, text="hi")
    assert resp["ok"]
    assert time.monotonic() - started < 2.5
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses == [429, 200]
    first = slack.calls_to("chat.postMessage")[0]
    assert first.response == {"ok": False, "error": "ratelimited"}
    assert len(slack.messages(CHANNEL)) == 1
    slack.assert_no_errors()  # injected faults are not the client's fault


async def test_rate_limit_raises_without_handler(slack: SlackFake, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=CHANNEL, text="hi")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"
    await client.chat_postMessage(channel=CHANNEL, text="hi")  # only the next one failed


async def test_server_error_and_ok_false_and_slow(slack: SlackFake, client: AsyncWebClient) -> None:
    slack.fail_next("chat.update", status=503)
    slack.fail_next("auth.test", ok_false="account_inactive")
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel=CHANNEL, ts="1.0", text="x")
    assert err.value.response.status_code == 503
    with pytest.raises(SlackApiError) as err:
        await client.auth_test()
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "account_inactive"

    slack.slow("auth.test", 0.3, times=1)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.3
    fast = AsyncWebClient(token="xoxb-test", base_url=slack.api_url, timeout=1)
    await fast.auth_test()  # the slowness was used up


async def test_validation_errors(slack: SlackFake, client: AsyncWebClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"blocks": [section(f"b{i}") for i in range(51)]}, "invalid_blocks"),
        ({"blocks": [section("x" * 3001)]}, "invalid_blocks"),
        (
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
            "invalid_blocks",
        ),
        ({"text": "x" * 40_001}, "msg_too_long"),
    ]
    for kwargs, error in cases:
        kwargs.setdefault("text", "fallback")
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel=CHANNEL, **kwargs)
        assert err.value.response["error"] == error
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="", text="hi")
    assert err.value.response["error"] == "channel_not_found"
    # Limits are inclusive: exactly 50 blocks, 3000 / 150 chars pass.
    await client.chat_postMessage(
        channel=CHANNEL, text="ok", blocks=[section("x" * 3000)] * 1 + [section("y")] * 49
    )
    assert [e.error for e in slack.errors_returned] == [
        "invalid_blocks",
        "invalid_blocks",
        "invalid_blocks",
        "msg_too_long",
        "channel_not_found",
    ]
    assert "more than 50" in slack.errors_returned[0].details[0]
    with pytest.raises(AssertionError, match="msg_too_long"):
        slack.assert_no_errors()


async def test_form_bodies_and_auth(slack: SlackFake) -> None:
    blocks = json.dumps([section("from a form")])
    async with aiohttp.ClientSession() as session:
        async with session.post(
            slack.api_url + "chat.postMessage",
            data={"token": "xoxb-form", "channel": CHANNEL, "text": "t", "blocks": blocks},
        ) as resp:
            body = await resp.json()
        assert body["ok"], body
        assert slack.messages(CHANNEL)[0]["blocks"][0]["text"]["text"] == "from a form"
        assert "token" not in slack.calls[-1].args

        async with session.post(slack.api_url + "auth.test") as resp:
            assert (await resp.json()) == {"ok": False, "error": "not_authed"}
        bad = {"Authorization": "Bearer nope"}
        async with session.post(slack.api_url + "auth.test", headers=bad) as resp:
            assert (await resp.json())["error"] == "invalid_auth"


async def test_response_url(slack: SlackFake, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(
        channel=CHANNEL, text="Approve?", blocks=decision_blocks()
    )
    url = slack.response_url("click1", channel=CHANNEL, message_ts=posted["ts"])
    assert url.startswith(slack.base_url + "response/")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, json={"replace_original": True, "text": "Rolling back", "blocks": []}
        ) as resp,
    ):
        assert resp.status == 200
    call = await slack.wait_for("response_url")
    assert call.args["name"] == "click1" and call.args["text"] == "Rolling back"
    msg = slack.message(CHANNEL, posted["ts"])
    assert msg["text"] == "Rolling back" and msg["blocks"] == []


async def test_wait_for_waits_and_times_out(slack: SlackFake, client: AsyncWebClient) -> None:
    mark = slack.mark()

    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel=CHANNEL, text="one")
        await client.chat_postMessage(channel=CHANNEL, text="two")

    task = asyncio.create_task(later())
    call = await slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.args["text"] == "two", since=mark
    )
    assert call.response["message"]["text"] == "two"
    second = await slack.wait_for("chat.postMessage", count=2)
    assert second is call
    await task
    texts = await slack.wait_until(lambda: [m["text"] for m in slack.messages(CHANNEL)])
    assert texts == ["one", "two"]
    with pytest.raises(SlackFakeTimeout, match=r"chat\.postMessage"):
        await slack.wait_for("chat.update", timeout=0.1)


async def test_signature_round_trip() -> None:
    body = urllib.parse.urlencode({"text": "myapp v1.3.2", "user_id": "U0CAROL"})
    headers = sign(body, SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(
        body=body,
        timestamp=headers["X-Slack-Request-Timestamp"],
        signature=headers["X-Slack-Signature"],
    )
    assert verifier.is_valid_request(body, headers)
    stale = sign(body, SECRET, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(body, stale)
    assert not SignatureVerifier("other").is_valid_request(body, headers)


async def test_send_command_and_action_reach_a_verifying_server(slack: SlackFake) -> None:
    received: list[tuple[dict[str, str], dict[str, str]]] = []
    verifier = SignatureVerifier(SECRET)

    async def endpoint(request: web.Request) -> web.Response:
        raw = await request.text()
        if not verifier.is_valid_request(raw, dict(request.headers)):
            return web.Response(status=401)
        received.append((dict(urllib.parse.parse_qsl(raw)), dict(request.headers)))
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        async with aiohttp.ClientSession() as session:
            resp = await send_command(
                session,
                url,
                SECRET,
                text="myapp v1.3.2 bad deploy",
                response_url=slack.response_url("cmd"),
                headers_extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
            )
            assert resp.status == 200
            form, headers = received[-1]
            assert form["command"] == "/rollback" and form["text"] == "myapp v1.3.2 bad deploy"
            assert form["user_id"] == "U0CAROL" and form["channel_id"] == "C0OPS"
            assert headers["X-Slack-Retry-Num"] == "1"

            stale = await send_command(
                session, url, SECRET, text="x", timestamp=int(time.time()) - 600
            )
            assert stale.status == 401

            resp = await send_action(
                session,
                url,
                SECRET,
                user_id="U0ALICE",
                action_id="approve",
                value="INC-1",
                channel_id=CHANNEL,
                message_ts="1732500000.000100",
                thread_ts="1732500000.000000",
                response_url=slack.response_url("act"),
            )
            assert resp.status == 200
            payload = json.loads(received[-1][0]["payload"])
            assert payload["type"] == "block_actions"
            assert payload["user"]["id"] == "U0ALICE"
            assert payload["container"]["thread_ts"] == "1732500000.000000"
            assert payload["actions"][0]["value"] == "INC-1"

            msg = {"ts": "1732500000.000200", "text": "x", "blocks": decision_blocks()}
            await click(
                session, url, SECRET, message=msg, label="fix", user_id="U0X", channel_id=CHANNEL
            )
            action = json.loads(received[-1][0]["payload"])["actions"][0]
            assert action["action_id"] == "fix_forward" and action["block_id"] == "decision"
            assert action["text"]["text"] == "Fix forward"
            with pytest.raises(AssertionError, match=r"Roll back to v1\.3\.2"):
                await click(
                    session, url, SECRET, message=msg, label="Abort", user_id="U0X", channel_id="C"
                )
    finally:
        await runner.cleanup()


async def test_bolt_app_round_trip(slack: SlackFake) -> None:
    """A real bolt AsyncApp, pointed at the fake, answering signed requests."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay

    bolt = AsyncApp(
        client=AsyncWebClient(token="xoxb-test", base_url=slack.api_url), signing_secret=SECRET
    )

    @bolt.command("/rollback")
    async def on_command(ack: AsyncAck, say: AsyncSay, respond: AsyncRespond) -> None:
        await ack("Starting")
        await respond("only you can see this")
        await say(text="Incident INC-1", blocks=decision_blocks())

    @bolt.action("rollback")
    async def on_rollback(ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any]) -> None:
        await ack()
        await respond(replace_original=True, text=f"Rolling back ({body['user']['id']})")

    async def endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        async with aiohttp.ClientSession() as session:
            resp = await send_command(
                session, url, SECRET, text="myapp", response_url=slack.response_url("cmd")
            )
            assert (resp.status, resp.text) == (200, "Starting")
            await slack.wait_for("chat.postMessage")
            (msg,) = slack.messages("C0OPS")
            response_url = slack.response_url("btn", channel="C0OPS", message_ts=msg["ts"])
            resp = await click(
                session,
                url,
                SECRET,
                message=msg,
                label="Roll back",
                user_id="U0ALICE",
                channel_id="C0OPS",
                response_url=response_url,
            )
            assert resp.status == 200
            await slack.wait_for(lambda c: c.method == "response_url" and c.args["name"] == "btn")
            assert slack.message("C0OPS", msg["ts"])["text"] == "Rolling back (U0ALICE)"
            assert slack.ephemerals[0]["text"] == "only you can see this"
            stale = await send_command(
                session, url, SECRET, text="myapp", timestamp=int(time.time()) - 600
            )
            assert stale.status == 401
        slack.assert_no_errors()
    finally:
        await runner.cleanup()
