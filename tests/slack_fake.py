"""A local stand-in for Slack, for tests.

Two halves:

* :class:`SlackFake` — an aiohttp server on ``127.0.0.1`` (random port) that speaks enough of
  Slack's Web API for the bot: point the bot at it with ``SLACK_API_URL=slack.api_url``. It keeps
  a message store per channel (so tests assert on what a user would see), records every call,
  validates payloads the way Slack does (``msg_too_long``, ``invalid_blocks``…), and can inject
  faults (429 with ``Retry-After``, 5xx, ``ok: false``, slowness).
* ``sign`` / ``send_command`` / ``send_action`` / ``click`` / ``send_event`` — requests *to* the
  bot, signed with the signing secret and shaped like the ones Slack sends.

Request formats the fake accepts are the ones ``slack_sdk`` really produces:

* JSON bodies (``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``, ``views.publish``),
* POST with *query-string* arguments and an empty form body (``auth.test``,
  ``files.getUploadURLExternal``, ``files.completeUploadExternal`` — ``files`` is a JSON string),
* GET with query-string arguments (``chat.getPermalink``, ``conversations.*``, ``users.info``,
  ``usergroups.users.list``),
* form-encoded bodies (other clients; ``blocks``/``attachments``/``view`` arrive as JSON strings),
* multipart (legacy ``files.upload``) and a raw-bytes POST without auth to the upload URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "Button",
    "Call",
    "FakeFile",
    "ReturnedError",
    "SentResponse",
    "SlackFake",
    "SlackFakeTimeout",
    "all_text",
    "buttons",
    "click",
    "send_action",
    "send_command",
    "send_event",
    "sign",
    "validate_blocks",
]

BOT_TOKEN = "xoxb-test"
TEAM_ID = "T0REWIND"
TEAM_DOMAIN = "rewind-test"
BOT_USER_ID = "U0REWINDBOT"
BOT_ID = "B0REWIND"
APP_ID = "A0REWIND"
PERMALINK_BASE = "https://fake.slack.com"

# Slack's documented limits.
MAX_MESSAGE_TEXT = 40_000
MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_VIEW = 100
MAX_SECTION_TEXT = 3_000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2_000
MAX_ID_LENGTH = 255
MAX_URL_LENGTH = 3_000
MAX_RESPONSE_URL_USES = 5

# Arguments that form-encoded clients send as JSON strings.
_JSON_ARGS = frozenset(
    {"blocks", "attachments", "view", "metadata", "files", "unfurls", "user_auth_blocks"}
)
_KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
        "table",
        "context_actions",
    }
)

Predicate = Callable[["Call"], bool]


class SlackFakeTimeout(AssertionError):
    """``wait_for``/``wait_until`` gave up; the message lists what did arrive."""


@dataclass
class Call:
    """One request the fake received.

    ``method`` is the Web API method (``"chat.postMessage"``), or ``"response_url"`` for a POST
    to a response URL, or ``"upload_url"`` for the raw upload of ``files_upload_v2``.
    ``status``/``response`` are ``None`` while the call is still being answered.
    """

    method: str
    args: dict[str, Any]
    at: float
    headers: dict[str, str]
    status: int | None = None
    response: Any = None

    @property
    def done(self) -> bool:
        return self.status is not None

    @property
    def ok(self) -> bool:
        """True when Slack answered 200 and (for JSON answers) ``ok: true``."""
        if self.status != 200:
            return False
        if isinstance(self.response, Mapping):
            return bool(self.response.get("ok"))
        return True

    @property
    def error(self) -> str | None:
        if isinstance(self.response, Mapping) and not self.response.get("ok", True):
            return str(self.response.get("error"))
        if self.status is not None and self.status != 200:
            return str(self.response)
        return None


@dataclass
class ReturnedError:
    """An error the fake returned because of what the client sent (not an injected fault)."""

    method: str
    error: str
    args: dict[str, Any]
    details: list[str] = field(default_factory=list)


@dataclass
class FakeFile:
    id: str
    filename: str
    title: str
    length: int
    content: bytes = b""
    uploaded: bool = False
    completed: bool = False
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None
    legacy: bool = False

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


@dataclass
class Button:
    action_id: str
    block_id: str
    text: str
    value: str | None = None
    style: str | None = None
    url: str | None = None


@dataclass
class _Fault:
    status: int
    error: str
    retry_after: int | None
    body: str | dict[str, Any] | None
    remaining: int


@dataclass
class _Slow:
    seconds: float
    remaining: int | None


@dataclass
class _ResponseUrl:
    name: str
    channel: str | None
    message_ts: str | None
    thread_ts: str | None
    user_id: str | None
    uses: int = 0


class _SlackError(Exception):
    def __init__(self, error: str, details: Iterable[str] = ()) -> None:
        super().__init__(error)
        self.error = error
        self.details = list(details)


Handler = Callable[[dict[str, Any]], dict[str, Any]]


class SlackFake:
    """A fake Slack Web API server. Use as ``async with SlackFake() as slack:``."""

    def __init__(
        self,
        *,
        token: str | None = None,
        accepted_token_prefixes: tuple[str, ...] = ("xoxb-",),
        channels: Iterable[str] | None = None,
    ) -> None:
        self.token = token
        """When set, the only token accepted (others get ``invalid_auth``)."""
        self.accepted_token_prefixes = accepted_token_prefixes
        self.channels: set[str] | None = set(channels) if channels is not None else None
        """When set, posting to a channel not in it gives ``channel_not_found``."""
        self.usergroups: dict[str, list[str]] = {}
        # conversations.replies pages hold at most this many messages (Slack: `limit`, ≤ 1000)
        self.replies_page = 1000
        """User-group id -> member user ids, for ``usergroups.users.list``."""
        self.views_opened: list[dict[str, Any]] = []
        """Modals opened with ``views.open``, newest last."""
        self.users: dict[str, dict[str, Any]] = {}
        """User id -> extra/overriding fields for ``users.info``."""
        self.calls: list[Call] = []
        self.errors_returned: list[ReturnedError] = []
        self.files: list[FakeFile] = []
        """Completed uploads (``files_upload_v2`` and legacy ``files.upload``)."""
        self.ephemerals: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        """User id -> last published home view."""
        self.max_response_url_uses = MAX_RESPONSE_URL_USES
        self.handlers: dict[str, Handler] = {}
        """Extra/overriding Web API methods: ``slack.handlers["x.y"] = lambda args: {...}``."""

        self._store: dict[str, list[dict[str, Any]]] = {}
        self._pending_files: dict[str, FakeFile] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._slow: dict[str, _Slow] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._ts_micros = 1_732_500_000_000_000
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SlackFake:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> SlackFake:
        if self._runner is not None:
            return self
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{name}", self._handle_response_url)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            site = web.SockSite(runner, sock, shutdown_timeout=0.5)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self.port = int(sock.getsockname()[1])
        self._runner = runner
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/`` (with the trailing slash)."""
        if self.port is None:
            raise RuntimeError("SlackFake is not started")
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` / ``AsyncWebClient(base_url=...)`` should be."""
        return f"{self.base_url}api/"

    def response_url(
        self,
        name: str,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
        thread_ts: str | None = None,
        user_id: str | None = None,
    ) -> str:
        """A response URL on the fake. POSTs to it are recorded as ``"response_url"`` calls.

        Bound to a message (``channel`` + ``message_ts``), ``replace_original``/
        ``delete_original`` act on that message; ``response_type: in_channel`` posts to
        ``channel`` (in ``thread_ts`` if given); otherwise the reply is stored as an ephemeral.
        """
        self._response_urls[name] = _ResponseUrl(name, channel, message_ts, thread_ts, user_id)
        return f"{self.base_url}response/{urllib.parse.quote(name, safe='')}"

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        *,
        ok_false: str | None = None,
        body: str | dict[str, Any] | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` (``"*"``: any) fail.

        ``status=429`` answers with ``Retry-After: retry_after`` and ``ratelimited``; 5xx with a
        JSON error body (or ``body``: a ``str`` is sent as ``text/html``); ``ok_false="x"`` answers
        HTTP 200 ``{"ok": false, "error": "x"}``.
        """
        if ok_false is not None:
            fault = _Fault(200, ok_false, None, body, times)
        else:
            error = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}.get(
                status, "request_failed"
            )
            fault = _Fault(status, error, retry_after if status == 429 else None, body, times)
        self._faults.setdefault(method, []).append(fault)

    def slow(self, method: str, seconds: float, times: int | None = None) -> None:
        """Delay answers to ``method`` (``"*"``: any) by ``seconds``; ``seconds=0`` clears."""
        if seconds <= 0:
            self._slow.pop(method, None)
        else:
            self._slow[method] = _Slow(seconds, times)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._slow.clear()

    # ------------------------------------------------------------------ assertions

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def mark(self) -> int:
        """Index to pass as ``since=`` to only consider later calls."""
        return len(self.calls)

    async def wait_for(
        self,
        predicate_or_method: str | Predicate,
        timeout: float = 10.0,
        *,
        count: int = 1,
        since: int = 0,
    ) -> Call:
        """Return the ``count``-th answered call in ``calls[since:]`` that matches.

        Returns at once when it is already there; otherwise waits (no polling) until it arrives.
        """
        matches: Predicate
        if isinstance(predicate_or_method, str):
            wanted = predicate_or_method

            def by_method(c: Call) -> bool:
                return c.method == wanted

            matches = by_method
            label = repr(wanted)
        else:
            matches = predicate_or_method
            label = getattr(predicate_or_method, "__name__", "predicate")

        def found() -> Call | None:
            n = 0
            for c in self.calls[since:]:
                if c.done and matches(c):
                    n += 1
                    if n == count:
                        return c
            return None

        call = await self._wait(found, timeout, f"call #{count} matching {label}")
        assert isinstance(call, Call)
        return call

    async def wait_until(
        self,
        condition: Callable[[], Any],
        timeout: float = 10.0,
        what: str = "condition",
    ) -> Any:
        """Wait until ``condition()`` is truthy, re-checking after every call; returns its value."""
        return await self._wait(condition, timeout, what)

    async def _wait(
        self,
        check: Callable[[], Any],
        timeout: float,
        what: str,
    ) -> Any:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = self._changed
                    result = check()
                    if result:
                        return result
                    await event.wait()
        except TimeoutError:
            seen = ", ".join(
                f"{c.method}" + ("" if c.ok else f"[{c.error}]") for c in self.calls[-30:]
            )
            raise SlackFakeTimeout(
                f"no {what} within {timeout}s; last calls: {seen or 'none'}"
            ) from None

    def assert_no_errors(self) -> None:
        """Fail if the fake ever rejected what the client sent (msg_too_long, invalid_blocks…)."""
        if self.errors_returned:
            lines = [f"{e.method}: {e.error} {e.details}" for e in self.errors_returned]
            raise AssertionError("Slack errors returned:\n" + "\n".join(lines))

    def messages(self, channel: str, *, top_level: bool = False) -> list[dict[str, Any]]:
        """Current messages of ``channel`` (after updates/deletes), oldest first.

        Each is a copy with at least ``ts``, ``thread_ts`` (``None`` unless a reply), ``text``,
        ``blocks`` (``[]`` if none). ``top_level=True`` leaves out thread replies.
        """
        return [
            self._view(m)
            for m in self._store.get(channel, [])
            if not (top_level and m.get("thread_ts"))
        ]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        msg = self._find(channel, ts)
        if msg is None:
            raise KeyError(f"no message {ts} in {channel}")
        return self._view(msg)

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies (not the parent) in the thread of ``ts``, oldest first."""
        return [self._view(m) for m in self._store.get(channel, []) if m.get("thread_ts") == ts]

    @staticmethod
    def all_text(msg: Mapping[str, Any]) -> str:
        """See the module-level :func:`all_text`."""
        return all_text(msg)

    @staticmethod
    def buttons(msg: Mapping[str, Any]) -> list[Button]:
        """See the module-level :func:`buttons`."""
        return buttons(msg)

    def clear_calls(self) -> None:
        self.calls.clear()
        self.errors_returned.clear()

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _view(msg: Mapping[str, Any]) -> dict[str, Any]:
        out = json.loads(json.dumps(msg))
        out.setdefault("thread_ts", None)
        out.setdefault("text", "")
        out.setdefault("blocks", [])
        return out  # type: ignore[no-any-return]

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _next_ts(self) -> str:
        self._ts_micros += 100
        return f"{self._ts_micros // 1_000_000}.{self._ts_micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):09d}"

    def _find(self, channel: str, ts: str) -> dict[str, Any] | None:
        for m in self._store.get(channel, []):
            if m["ts"] == ts:
                return m
        return None

    def _record(self, method: str, args: dict[str, Any], headers: Mapping[str, str]) -> Call:
        call = Call(method=method, args=args, at=time.time(), headers=dict(headers))
        self.calls.append(call)
        self._notify()
        return call

    async def _delay_and_fault(self, method: str) -> _Fault | None:
        for key in (method, "*"):
            slow = self._slow.get(key)
            if slow is not None:
                if slow.remaining is not None:
                    slow.remaining -= 1
                    if slow.remaining <= 0:
                        del self._slow[key]
                await asyncio.sleep(slow.seconds)
                break
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                fault = queue[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.pop(0)
                return fault
        return None

    @staticmethod
    def _fault_response(fault: _Fault) -> tuple[web.Response, Any]:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if isinstance(fault.body, str):
            resp = web.Response(
                status=fault.status, text=fault.body, content_type="text/html", headers=headers
            )
            return resp, fault.body
        body = fault.body if fault.body is not None else {"ok": False, "error": fault.error}
        return web.json_response(body, status=fault.status, headers=headers), body

    async def _parse_args(self, request: web.Request) -> dict[str, Any]:
        """Query string + body (JSON, form or multipart) -> args; file parts become
        ``{"filename", "content", "content_type"}`` dicts; JSON-string arguments are decoded."""
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                raw = await request.read()
                if raw.strip():
                    body = json.loads(raw)
                    if isinstance(body, dict):
                        args.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        args[key] = {
                            "filename": value.filename,
                            "content": value.file.read(),
                            "content_type": value.content_type,
                        }
                    else:
                        args[key] = value
        for key in _JSON_ARGS & args.keys():
            value = args[key]
            if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(value)
        return {k: v for k, v in args.items() if v is not None}

    def _check_auth(self, request: web.Request, args: dict[str, Any]) -> None:
        token: str | None = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :].strip()
        token_arg = args.pop("token", None)
        if not token and isinstance(token_arg, str):
            token = token_arg
        if not token:
            raise _SlackError("not_authed")
        if self.token is not None and token != self.token:
            raise _SlackError("invalid_auth")
        if not token.startswith(self.accepted_token_prefixes):
            raise _SlackError("invalid_auth")

    # ------------------------------------------------------------------ HTTP handlers

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            args = await self._parse_args(request)
        except ValueError:
            args = {}
            parse_failed = True
        else:
            parse_failed = False
        call = self._record(method, args, request.headers)
        try:
            fault = await self._delay_and_fault(method)
            if fault is not None:
                resp, body = self._fault_response(fault)
                call.status, call.response = resp.status, body
                return resp
            try:
                if parse_failed:
                    raise _SlackError("invalid_json")
                self._check_auth(request, args)
                handler = self.handlers.get(method) or self._methods().get(method)
                if handler is None:
                    raise _SlackError("unknown_method")
                body = handler(args)
            except _SlackError as e:
                body = {"ok": False, "error": e.error}
                if e.details:
                    body["errors"] = e.details
                    body["response_metadata"] = {"messages": [f"[ERROR] {d}" for d in e.details]}
                self.errors_returned.append(ReturnedError(method, e.error, args, e.details))
            call.status, call.response = 200, body
            return web.json_response(body)
        finally:
            if call.status is None:
                call.status, call.response = 499, "handler did not finish"
            self._notify()

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        if request.content_type == "multipart/form-data":
            form = await request.post()
            data = b""
            for value in form.values():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    break
        else:
            data = await request.read()
        call = self._record(
            "upload_url", {"file_id": file_id, "length": len(data)}, request.headers
        )
        try:
            fault = await self._delay_and_fault("upload_url")
            if fault is not None:
                resp, body = self._fault_response(fault)
                call.status, call.response = resp.status, body
                return resp
            pending = self._pending_files.get(file_id)
            if pending is None:
                call.status, call.response = 404, "file_not_found"
                self.errors_returned.append(
                    ReturnedError("upload_url", "file_not_found", call.args)
                )
                return web.Response(status=404, text="file_not_found")
            pending.content = data
            pending.uploaded = True
            text = f"OK - {len(data)}"
            call.status, call.response = 200, text
            return web.Response(text=text, content_type="text/plain")
        finally:
            if call.status is None:
                call.status, call.response = 499, "handler did not finish"
            self._notify()

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        name = urllib.parse.unquote(request.match_info["name"])
        raw = await request.read()
        body: dict[str, Any] = {}
        parse_error = False
        try:
            if request.content_type == "application/x-www-form-urlencoded":
                form = dict(urllib.parse.parse_qsl(raw.decode()))
                body = json.loads(form.get("payload", "{}"))
            elif raw.strip():
                loaded = json.loads(raw)
                body = loaded if isinstance(loaded, dict) else {}
                parse_error = not isinstance(loaded, dict)
        except ValueError:
            parse_error = True
        call = self._record("response_url", {**body, "name": name}, request.headers)
        try:
            fault = await self._delay_and_fault("response_url")
            if fault is not None:
                resp, rbody = self._fault_response(fault)
                call.status, call.response = resp.status, rbody
                return resp
            status, text = self._apply_response_url(name, body, parse_error)
            if status != 200:
                self.errors_returned.append(ReturnedError("response_url", text, call.args))
            call.status, call.response = status, text
            return web.Response(status=status, text=text, content_type="text/plain")
        finally:
            if call.status is None:
                call.status, call.response = 499, "handler did not finish"
            self._notify()

    def _apply_response_url(
        self, name: str, body: dict[str, Any], parse_error: bool
    ) -> tuple[int, str]:
        if parse_error:
            return 400, "invalid_payload"
        bound = self._response_urls.get(name)
        if bound is not None:
            bound.uses += 1
            if bound.uses > self.max_response_url_uses:
                return 404, "used_url"
        if body.get("delete_original") in (True, "true"):
            if bound is not None and bound.channel and bound.message_ts:
                msgs = self._store.get(bound.channel, [])
                self._store[bound.channel] = [m for m in msgs if m["ts"] != bound.message_ts]
            return 200, "ok"
        try:
            self._validate_message(body, require_content=True)
        except _SlackError as e:
            return 400, e.error
        if bound is None:
            return 200, "ok"
        content: dict[str, Any] = {
            k: body[k] for k in ("text", "blocks", "attachments") if k in body
        }
        if body.get("replace_original") in (True, "true"):
            msg = None
            if bound.channel and bound.message_ts:
                msg = self._find(bound.channel, bound.message_ts)
            if msg is None:
                return 404, "message_not_found"
            for key in ("text", "blocks", "attachments"):
                msg.pop(key, None)
            msg.update(content)
            msg.setdefault("text", "")
            msg["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        elif body.get("response_type") == "in_channel" and bound.channel:
            thread_ts = body.get("thread_ts") or bound.thread_ts
            self._post(bound.channel, content, thread_ts)
        else:
            self.ephemerals.append(
                {
                    "channel": bound.channel,
                    "user": bound.user_id,
                    "ts": self._next_ts(),
                    "thread_ts": body.get("thread_ts") or bound.thread_ts,
                    "text": body.get("text", ""),
                    "blocks": body.get("blocks", []),
                    "via": "response_url",
                }
            )
        return 200, "ok"

    # ------------------------------------------------------------------ Web API methods

    def _methods(self) -> dict[str, Handler]:
        return {
            "api.test": lambda args: {"ok": True, "args": args},
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "usergroups.users.list": self._usergroups_users_list,
            "usergroups.list": self._usergroups_list,
            "users.info": self._users_info,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.upload": self._files_upload,
        }

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"{PERMALINK_BASE}/",
            "team": "Rewind Test",
            "user": "rewind",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _channel(self, args: Mapping[str, Any], key: str = "channel") -> str:
        channel = args.get(key)
        if not isinstance(channel, str) or not channel:
            raise _SlackError("channel_not_found")
        if self.channels is not None and channel not in self.channels:
            raise _SlackError("channel_not_found")
        return channel

    def _validate_message(self, args: Mapping[str, Any], *, require_content: bool) -> None:
        text = args.get("text")
        if text is not None and not isinstance(text, str):
            raise _SlackError("invalid_arguments", ["text must be a string"])
        if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
            raise _SlackError("msg_too_long")
        blocks = args.get("blocks")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise _SlackError("invalid_blocks_format", ["blocks must be a JSON array"])
            problems = validate_blocks(blocks)
            if problems:
                raise _SlackError("invalid_blocks", problems)
        attachments = args.get("attachments")
        if attachments is not None:
            if not isinstance(attachments, list):
                raise _SlackError("invalid_attachments")
            for att in attachments:
                if not isinstance(att, dict):
                    raise _SlackError("invalid_attachments")
                if att.get("blocks") is not None:
                    problems = validate_blocks(att["blocks"])
                    if problems:
                        raise _SlackError("invalid_blocks", problems)
        if require_content and not (text or blocks or attachments or args.get("markdown_text")):
            raise _SlackError("no_text")

    def _post(
        self, channel: str, content: Mapping[str, Any], thread_ts: str | None
    ) -> dict[str, Any]:
        msgs = self._store.setdefault(channel, [])
        ts = self._next_ts()
        msg: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "ts": ts,
            "text": content.get("text") or "",
        }
        for key in ("blocks", "attachments", "metadata", "files", "upload"):
            if content.get(key) is not None:
                msg[key] = content[key]
        if thread_ts:
            parent = self._find(channel, thread_ts)
            if parent is not None and parent.get("thread_ts"):
                thread_ts = str(parent["thread_ts"])  # a reply's ts: same thread
            msg["thread_ts"] = thread_ts
            msg["parent_user_id"] = parent["user"] if parent is not None else BOT_USER_ID
        msgs.append(msg)
        return msg

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        self._validate_message(args, require_content=True)
        thread_ts = args.get("thread_ts") or None
        msg = self._post(channel, args, str(thread_ts) if thread_ts else None)
        if thread_ts and args.get("reply_broadcast") in (True, "true", "1", 1):
            msg["subtype"] = "thread_broadcast"
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": dict(msg)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        self._validate_message(args, require_content=False)
        ts = args.get("ts")
        msg = self._find(channel, ts) if isinstance(ts, str) else None
        if msg is None:
            raise _SlackError("message_not_found")
        if not any(k in args for k in ("text", "blocks", "attachments", "markdown_text")):
            raise _SlackError("no_text")
        # Like Slack: blocks/attachments not given are kept; an empty list removes them.
        if "text" in args:
            msg["text"] = args["text"]
        for key in ("blocks", "attachments", "metadata"):
            if key in args:
                if args[key]:
                    msg[key] = args[key]
                else:
                    msg.pop(key, None)
        msg["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": msg["ts"],
            "text": msg.get("text", ""),
            "message": dict(msg),
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        ts = args.get("ts")
        if not isinstance(ts, str) or self._find(channel, ts) is None:
            raise _SlackError("message_not_found")
        self._store[channel] = [m for m in self._store[channel] if m["ts"] != ts]
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        user = args.get("user")
        if not user:
            raise _SlackError("user_not_in_channel")
        self._validate_message(args, require_content=True)
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "ts": ts,
                "thread_ts": args.get("thread_ts"),
                "text": args.get("text", ""),
                "blocks": args.get("blocks", []),
                "via": "chat.postEphemeral",
            }
        )
        return {"ok": True, "message_ts": ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        ts = args.get("message_ts")
        msg = self._find(channel, ts) if isinstance(ts, str) else None
        if msg is None:
            raise _SlackError("message_not_found")
        link = f"{PERMALINK_BASE}/archives/{channel}/p{msg['ts'].replace('.', '')}"
        if msg.get("thread_ts"):
            link += f"?thread_ts={msg['thread_ts']}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _with_thread_info(self, channel: str, msg: dict[str, Any]) -> dict[str, Any]:
        out = dict(msg)
        if not msg.get("thread_ts"):
            replies = [m for m in self._store.get(channel, []) if m.get("thread_ts") == msg["ts"]]
            if replies:
                out["thread_ts"] = msg["ts"]
                out["reply_count"] = len(replies)
                out["reply_users"] = sorted({r["user"] for r in replies})
                out["latest_reply"] = replies[-1]["ts"]
        return out

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        ts = args.get("ts")
        msg = self._find(channel, ts) if isinstance(ts, str) else None
        if msg is None:
            raise _SlackError("thread_not_found")
        root_ts = msg.get("thread_ts") or msg["ts"]
        root = self._find(channel, root_ts)
        replies = [m for m in self._store.get(channel, []) if m.get("thread_ts") == root_ts]
        messages = ([self._with_thread_info(channel, root)] if root else []) + [
            dict(m) for m in replies
        ]
        size = min(int(args.get("limit") or 1000), self.replies_page)
        start = int(args.get("cursor") or 0)
        page = messages[start : start + size]
        more = start + size < len(messages)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + size) if more else ""},
        }

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        limit = int(args.get("limit") or 100)
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or 1e12)
        visible = [
            self._with_thread_info(channel, m)
            for m in self._store.get(channel, [])
            if (not m.get("thread_ts") or m.get("subtype") == "thread_broadcast")
            and oldest < float(m["ts"]) < latest
        ]
        visible.reverse()  # newest first, like Slack
        return {
            "ok": True,
            "messages": visible[:limit],
            "has_more": len(visible) > limit,
            "response_metadata": {"next_cursor": ""},
        }

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if not isinstance(group, str) or group not in self.usergroups:
            raise _SlackError("no_such_subteam")
        return {"ok": True, "users": list(self.usergroups[group])}

    def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        groups = [
            {"id": gid, "team_id": TEAM_ID, "handle": gid.lower(), "users": list(users)}
            for gid, users in self.usergroups.items()
        ]
        return {"ok": True, "usergroups": groups}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user")
        if not isinstance(user, str) or not user:
            raise _SlackError("user_not_found")
        name = user.lower()
        info: dict[str, Any] = {
            "id": user,
            "team_id": TEAM_ID,
            "name": name,
            "real_name": name.capitalize(),
            "deleted": False,
            "is_bot": user == BOT_USER_ID,
            "is_admin": False,
            "tz": "UTC",
            "profile": {"display_name": name, "real_name": name.capitalize()},
        }
        info.update(self.users.get(user, {}))
        return {"ok": True, "user": info}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """A modal opened on a click's trigger_id; `views_opened` keeps them for the test."""
        if not args.get("trigger_id"):
            raise _SlackError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, Mapping) or view.get("type") != "modal":
            raise _SlackError("invalid_arguments", ["[ERROR] view must be a modal"])
        problems = validate_blocks(view.get("blocks") or [], max_blocks=100)
        if problems:
            raise _SlackError("invalid_arguments", problems)
        opened = {**view, "id": self._next_id("V")}
        self.views_opened.append(opened)
        return {"ok": True, "view": opened}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id")
        view = args.get("view")
        if not user_id:
            raise _SlackError("user_not_found")
        if not isinstance(view, dict):
            raise _SlackError("invalid_arguments", ["view must be a JSON object"])
        blocks = view.get("blocks", [])
        problems = validate_blocks(blocks, max_blocks=MAX_BLOCKS_VIEW)
        if problems:
            raise _SlackError("invalid_arguments", problems)
        self.views[str(user_id)] = view
        return {
            "ok": True,
            "view": {**view, "id": self._next_id("V"), "team_id": TEAM_ID, "app_id": APP_ID},
        }

    def _reaction_target(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        ts = args.get("timestamp")
        msg = self._find(channel, ts) if isinstance(ts, str) else None
        if msg is None:
            raise _SlackError("message_not_found")
        if not args.get("name"):
            raise _SlackError("invalid_name")
        return msg

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        msg = self._reaction_target(args)
        reactions: list[dict[str, Any]] = msg.setdefault("reactions", [])
        for r in reactions:
            if r["name"] == args["name"]:
                raise _SlackError("already_reacted")
        reactions.append({"name": args["name"], "users": [BOT_USER_ID], "count": 1})
        return {"ok": True}

    def _reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        msg = self._reaction_target(args)
        reactions = msg.get("reactions", [])
        kept = [r for r in reactions if r["name"] != args["name"]]
        if len(kept) == len(reactions):
            raise _SlackError("no_reaction")
        msg["reactions"] = kept
        return {"ok": True}

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        length = args.get("length")
        if not filename or length is None:
            raise _SlackError("invalid_arguments", ["filename and length are required"])
        try:
            size = int(length)
        except (TypeError, ValueError):
            raise _SlackError("invalid_arguments", ["length must be an integer"]) from None
        file_id = self._next_id("F")
        self._pending_files[file_id] = FakeFile(
            id=file_id,
            filename=str(filename),
            title=str(filename),
            length=size,
            alt_txt=args.get("alt_txt"),
            snippet_type=args.get("snippet_type"),
        )
        return {"ok": True, "upload_url": f"{self.base_url}upload/v1/{file_id}", "file_id": file_id}

    def _share_files(
        self,
        files: list[FakeFile],
        channel: str | None,
        thread_ts: str | None,
        comment: str | None,
    ) -> None:
        for f in files:
            f.completed = True
            f.channel_id = channel
            f.thread_ts = thread_ts
            f.initial_comment = comment
            self.files.append(f)
        if channel:
            # Like Slack, the share shows up as a message (in the thread when thread_ts is set).
            content = {
                "text": comment or "",
                "files": [self._file_info(f) for f in files],
                "upload": True,
            }
            self._post(channel, content, thread_ts)

    def _file_info(self, f: FakeFile) -> dict[str, Any]:
        return {
            "id": f.id,
            "name": f.filename,
            "title": f.title,
            "size": len(f.content),
            "permalink": f"{PERMALINK_BASE}/files/{BOT_USER_ID}/{f.id}/{f.filename}",
        }

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        entries = args.get("files")
        if not isinstance(entries, list) or not entries:
            raise _SlackError("invalid_arguments", ["files must be a non-empty JSON array"])
        channel = args.get("channel_id") or None
        if channel is None and args.get("channels"):
            channel = str(args["channels"]).split(",")[0]
        if channel is not None:
            channel = self._channel({"channel": channel})
        thread_ts = args.get("thread_ts") or None
        done: list[FakeFile] = []
        for entry in entries:
            fid = entry.get("id") if isinstance(entry, dict) else None
            pending = self._pending_files.get(fid) if isinstance(fid, str) else None
            if pending is None or not pending.uploaded:
                raise _SlackError("file_not_found")
            if entry.get("title"):
                pending.title = str(entry["title"])
            done.append(pending)
        for f in done:
            del self._pending_files[f.id]
        self._share_files(done, channel, thread_ts, args.get("initial_comment"))
        return {"ok": True, "files": [{"id": f.id, "title": f.title} for f in done]}

    def _files_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        file_part = args.get("file")
        if isinstance(file_part, dict):
            content = bytes(file_part["content"])
            default_name = str(file_part.get("filename") or "file")
        elif isinstance(args.get("content"), str):
            content = str(args["content"]).encode()
            default_name = "file"
        else:
            raise _SlackError("no_file_data")
        channels = [c for c in str(args.get("channels") or "").split(",") if c]
        channel = self._channel({"channel": channels[0]}) if channels else None
        filename = str(args.get("filename") or default_name)
        f = FakeFile(
            id=self._next_id("F"),
            filename=filename,
            title=str(args.get("title") or filename),
            length=len(content),
            content=content,
            uploaded=True,
            legacy=True,
        )
        self._share_files([f], channel, args.get("thread_ts") or None, args.get("initial_comment"))
        return {"ok": True, "file": self._file_info(f)}


# ---------------------------------------------------------------------- Block Kit helpers


def _text_of(obj: Any) -> str:
    if isinstance(obj, Mapping):
        value = obj.get("text")
        return value if isinstance(value, str) else ""
    return obj if isinstance(obj, str) else ""


def _check_text_obj(
    obj: Any, where: str, limit: int, problems: list[str], *, plain_only: bool = False
) -> None:
    if not isinstance(obj, Mapping) or obj.get("type") not in ("plain_text", "mrkdwn"):
        problems.append(f"{where}: must be a text object (plain_text or mrkdwn)")
        return
    if plain_only and obj.get("type") != "plain_text":
        problems.append(f"{where}: must be plain_text")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}: text must be a non-empty string")
    elif len(text) > limit:
        problems.append(f"{where}: must be less than {limit + 1} characters")


def _check_element(el: Any, where: str, problems: list[str]) -> None:
    if not isinstance(el, Mapping) or not isinstance(el.get("type"), str):
        problems.append(f"{where}: element must be an object with a type")
        return
    action_id = el.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        problems.append(f"{where}.action_id: must be a string of at most 255 characters")
    if el["type"] == "button":
        _check_text_obj(el.get("text"), f"{where}.text", MAX_BUTTON_TEXT, problems, plain_only=True)
        value = el.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE):
            problems.append(f"{where}.value: must be a string of at most {MAX_BUTTON_VALUE}")
        url = el.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > MAX_URL_LENGTH):
            problems.append(f"{where}.url: must be a string of at most {MAX_URL_LENGTH}")
        style = el.get("style")
        if style is not None and style not in ("primary", "danger"):
            problems.append(f"{where}.style: must be primary or danger")
    confirm = el.get("confirm")
    if confirm is not None:
        if not isinstance(confirm, Mapping):
            problems.append(f"{where}.confirm: must be an object")
        else:
            for key, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
                _check_text_obj(
                    confirm.get(key),
                    f"{where}.confirm.{key}",
                    limit,
                    problems,
                    plain_only=key != "text",
                )


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_BLOCKS_MESSAGE) -> list[str]:
    """Problems Slack would report for ``blocks`` (empty list: valid). A subset of Block Kit's
    rules: counts and lengths of the blocks Rewind uses, types, unique block/action ids."""
    if not isinstance(blocks, list):
        return ["blocks: must be an array"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"blocks: must contain no more than {max_blocks} items")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            problems.append(f"{where}: must be an object with a type")
            continue
        btype = block["type"]
        if btype not in _KNOWN_BLOCK_TYPES:
            problems.append(f"{where}.type: unknown block type {btype!r}")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > MAX_ID_LENGTH:
                problems.append(f"{where}.block_id: must be a string of at most 255 characters")
            elif block_id in block_ids:
                problems.append(f"{where}.block_id: duplicate block_id {block_id!r}")
            else:
                block_ids.add(block_id)
        if btype == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                problems.append(f"{where}: must have text or fields")
            if text is not None:
                _check_text_obj(text, f"{where}.text", MAX_SECTION_TEXT, problems)
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
                    problems.append(f"{where}.fields: at most {MAX_SECTION_FIELDS} items")
                else:
                    for j, f in enumerate(fields):
                        _check_text_obj(f, f"{where}.fields[{j}]", MAX_FIELD_TEXT, problems)
            if block.get("accessory") is not None:
                _check_element(block["accessory"], f"{where}.accessory", problems)
        elif btype == "header":
            _check_text_obj(
                block.get("text"), f"{where}.text", MAX_HEADER_TEXT, problems, plain_only=True
            )
        elif btype == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}.elements: 1 to {MAX_CONTEXT_ELEMENTS} items")
            else:
                for j, el in enumerate(elements):
                    if isinstance(el, Mapping) and el.get("type") in ("plain_text", "mrkdwn"):
                        _check_text_obj(el, f"{where}.elements[{j}]", MAX_SECTION_TEXT, problems)
                    elif not (isinstance(el, Mapping) and el.get("type") == "image"):
                        problems.append(f"{where}.elements[{j}]: must be text or image")
        elif btype == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
                problems.append(f"{where}.elements: 1 to {MAX_ACTIONS_ELEMENTS} items")
            else:
                action_ids: set[str] = set()
                for j, el in enumerate(elements):
                    _check_element(el, f"{where}.elements[{j}]", problems)
                    aid = el.get("action_id") if isinstance(el, Mapping) else None
                    if isinstance(aid, str):
                        if aid in action_ids:
                            problems.append(f"{where}.elements[{j}]: duplicate action_id {aid!r}")
                        action_ids.add(aid)
        elif btype == "image":
            if not block.get("image_url") and not block.get("slack_file"):
                problems.append(f"{where}.image_url: required")
            alt = block.get("alt_text")
            if not isinstance(alt, str) or not alt or len(alt) > 2000:
                problems.append(f"{where}.alt_text: 1 to 2000 characters")
    return problems


def _rich_text(el: Any, out: list[str]) -> None:
    if isinstance(el, Mapping):
        if isinstance(el.get("text"), str):
            out.append(el["text"])
        elif el.get("type") == "link" and isinstance(el.get("url"), str):
            out.append(el["url"])
        for child in el.get("elements") or []:
            _rich_text(child, out)


def _block_texts(block: Any, out: list[str]) -> None:
    if not isinstance(block, Mapping):
        return
    btype = block.get("type")
    if btype == "rich_text":
        _rich_text(block, out)
        return
    if btype == "markdown" and isinstance(block.get("text"), str):
        out.append(block["text"])
        return
    if btype in ("header", "section") and _text_of(block.get("text")):
        out.append(_text_of(block.get("text")))
    for f in block.get("fields") or []:
        if _text_of(f):
            out.append(_text_of(f))
    elements = list(block.get("elements") or [])
    if block.get("accessory") is not None:
        elements.append(block["accessory"])
    for el in elements:
        if not isinstance(el, Mapping):
            continue
        if el.get("type") in ("plain_text", "mrkdwn"):
            out.append(_text_of(el))
        elif el.get("type") == "image" and isinstance(el.get("alt_text"), str):
            out.append(el["alt_text"])
        else:
            for key in ("text", "placeholder"):
                if _text_of(el.get(key)):
                    out.append(_text_of(el.get(key)))
    if btype == "image":
        if _text_of(block.get("title")):
            out.append(_text_of(block.get("title")))
        if isinstance(block.get("alt_text"), str):
            out.append(block["alt_text"])


def all_text(msg: Mapping[str, Any]) -> str:
    """Everything a reader sees in a message, one piece per line: ``text``, then every block's
    text (sections, fields, headers, context, button labels, rich text), attachments, files."""
    out: list[str] = []
    if isinstance(msg.get("text"), str) and msg["text"]:
        out.append(msg["text"])
    for block in msg.get("blocks") or []:
        _block_texts(block, out)
    for att in msg.get("attachments") or []:
        if not isinstance(att, Mapping):
            continue
        for key in ("pretext", "title", "text"):
            if isinstance(att.get(key), str) and att[key]:
                out.append(att[key])
        for f in att.get("fields") or []:
            if isinstance(f, Mapping):
                out.extend(str(f[k]) for k in ("title", "value") if f.get(k))
        for block in att.get("blocks") or []:
            _block_texts(block, out)
    for f in msg.get("files") or []:
        if isinstance(f, Mapping) and f.get("title"):
            out.append(str(f["title"]))
    return "\n".join(out)


def buttons(msg: Mapping[str, Any]) -> list[Button]:
    """The buttons of a message (actions blocks and section accessories), in order."""
    found: list[Button] = []
    blocks = list(msg.get("blocks") or [])
    for att in msg.get("attachments") or []:
        if isinstance(att, Mapping):
            blocks.extend(att.get("blocks") or [])
    for i, block in enumerate(blocks):
        if not isinstance(block, Mapping):
            continue
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if block.get("accessory") is not None:
            elements.append(block["accessory"])
        for el in elements:
            if isinstance(el, Mapping) and el.get("type") == "button":
                found.append(
                    Button(
                        action_id=str(el.get("action_id") or ""),
                        block_id=str(block.get("block_id") or f"b{i}"),
                        text=_text_of(el.get("text")),
                        value=el.get("value"),
                        style=el.get("style"),
                        url=el.get("url"),
                    )
                )
    return found


# ---------------------------------------------------------------------- requests to the bot


@dataclass
class SentResponse:
    """What the bot answered (body already read)."""

    status: int
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


_counter = itertools.count(1)


def _trigger_id() -> str:
    n = next(_counter)
    return f"{1_000_000_000_000 + n}.{2_000_000_000_000 + n}.{n:032x}"


def sign(
    body: str | bytes,
    secret: str,
    timestamp: int | None = None,
    *,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    """Headers Slack sends with ``body``: timestamp, ``v0=`` signature, content type."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": content_type,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }


async def _post_signed(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    body: str,
    *,
    content_type: str = "application/x-www-form-urlencoded",
    headers_extra: Mapping[str, str] | None = None,
    timestamp: int | None = None,
) -> SentResponse:
    headers = sign(body, secret, timestamp, content_type=content_type)
    headers.update(headers_extra or {})
    async with session.post(url, data=body.encode("utf-8"), headers=headers) as resp:
        text = await resp.text()
        return SentResponse(status=resp.status, text=text, headers=dict(resp.headers))


async def send_command(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    *,
    text: str,
    user_id: str = "U0CAROL",
    user_name: str | None = None,
    channel_id: str = "C0OPS",
    channel_name: str = "ops",
    response_url: str = "https://hooks.slack.com/commands/T0REWIND/1/fake",
    trigger_id: str | None = None,
    command: str = "/rollback",
    team_id: str = TEAM_ID,
    headers_extra: Mapping[str, str] | None = None,
    timestamp: int | None = None,
) -> SentResponse:
    """POST a slash command exactly as Slack does (form-encoded, signed)."""
    fields = {
        "token": "fake-verification-token",
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }
    body = urllib.parse.urlencode(fields)
    return await _post_signed(
        session, url, secret, body, headers_extra=headers_extra, timestamp=timestamp
    )


def block_actions_payload(
    *,
    user_id: str,
    action_id: str,
    value: str | None,
    channel_id: str,
    message_ts: str,
    block_id: str = "b",
    thread_ts: str | None = None,
    response_url: str = "https://hooks.slack.com/actions/T0REWIND/1/fake",
    user_name: str | None = None,
    button_text: str | None = None,
    message: Mapping[str, Any] | None = None,
    trigger_id: str | None = None,
    team_id: str = TEAM_ID,
) -> dict[str, Any]:
    """The JSON payload of a ``block_actions`` interaction on a button in a channel message."""
    name = user_name or user_id.lower()
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": False,
    }
    msg: dict[str, Any] = dict(message) if message is not None else {}
    msg.setdefault("type", "message")
    msg.setdefault("user", BOT_USER_ID)
    msg.setdefault("bot_id", BOT_ID)
    msg.setdefault("ts", message_ts)
    msg.setdefault("text", "")
    if thread_ts is None and msg.get("thread_ts"):
        thread_ts = str(msg["thread_ts"])
    if thread_ts:
        container["thread_ts"] = thread_ts
        msg["thread_ts"] = thread_ts
    elif "thread_ts" in msg and msg["thread_ts"] is None:
        del msg["thread_ts"]  # the fake's views use None; Slack omits the key
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": button_text or action_id, "emoji": True},
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if value is not None:
        action["value"] = value
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "fake-verification-token",
        "container": container,
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": msg,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


async def send_action(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    *,
    user_id: str,
    action_id: str,
    value: str | None,
    channel_id: str,
    message_ts: str,
    block_id: str = "b",
    thread_ts: str | None = None,
    response_url: str = "https://hooks.slack.com/actions/T0REWIND/1/fake",
    user_name: str | None = None,
    button_text: str | None = None,
    message: Mapping[str, Any] | None = None,
    trigger_id: str | None = None,
    headers_extra: Mapping[str, str] | None = None,
    timestamp: int | None = None,
) -> SentResponse:
    """POST a ``block_actions`` button click (``payload=<json>``, form-encoded, signed)."""
    payload = block_actions_payload(
        user_id=user_id,
        action_id=action_id,
        value=value,
        channel_id=channel_id,
        message_ts=message_ts,
        block_id=block_id,
        thread_ts=thread_ts,
        response_url=response_url,
        user_name=user_name,
        button_text=button_text,
        message=message,
        trigger_id=trigger_id,
    )
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    return await _post_signed(
        session, url, secret, body, headers_extra=headers_extra, timestamp=timestamp
    )


async def click(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    *,
    message: Mapping[str, Any],
    label: str,
    user_id: str,
    channel_id: str,
    response_url: str = "https://hooks.slack.com/actions/T0REWIND/1/fake",
    headers_extra: Mapping[str, str] | None = None,
    timestamp: int | None = None,
) -> SentResponse:
    """Click the button of ``message`` (e.g. from ``slack.messages(...)``) whose label contains
    ``label`` (case-insensitive). Fails listing the labels when there is no such button."""
    candidates = [b for b in buttons(message) if label.lower() in b.text.lower()]
    if not candidates:
        labels = [b.text for b in buttons(message)]
        raise AssertionError(f"no button containing {label!r} in message; buttons: {labels}")
    button = candidates[0]
    return await send_action(
        session,
        url,
        secret,
        user_id=user_id,
        action_id=button.action_id,
        value=button.value,
        block_id=button.block_id,
        channel_id=channel_id,
        message_ts=str(message["ts"]),
        thread_ts=message.get("thread_ts"),
        response_url=response_url,
        button_text=button.text,
        message=message,
        headers_extra=headers_extra,
        timestamp=timestamp,
    )


async def send_event(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    *,
    event: Mapping[str, Any],
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    headers_extra: Mapping[str, str] | None = None,
    timestamp: int | None = None,
) -> SentResponse:
    """POST an Events API ``event_callback`` (JSON, signed)."""
    n = next(_counter)
    envelope = {
        "token": "fake-verification-token",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{n:010d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    return await _post_signed(
        session,
        url,
        secret,
        json.dumps(envelope),
        content_type="application/json",
        headers_extra=headers_extra,
        timestamp=timestamp,
    )


async def submit_view(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    *,
    view: Mapping[str, Any],
    user_id: str,
    values: Mapping[str, Mapping[str, str]],
    team_id: str = TEAM_ID,
) -> SentResponse:
    """Submit a modal (``view_submission``) as Slack does: ``values`` maps block_id ->
    action_id -> the text typed in that plain_text_input."""
    name = user_id.lower()
    state = {
        block: {action: {"type": "plain_text_input", "value": text} for action, text in v.items()}
        for block, v in values.items()
    }
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "fake-verification-token",
        "trigger_id": _trigger_id(),
        "view": {**view, "state": {"values": state}, "team_id": team_id, "app_id": APP_ID},
        "response_urls": [],
        "is_enterprise_install": False,
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    return await _post_signed(session, url, secret, body)
