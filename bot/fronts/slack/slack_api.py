"""The Slack Web API client Rewind uses: every call counted; connection errors, rate limits
(429, or an HTTP 200 `ratelimited`) and 5xx retried by slack_sdk retry handlers; an answer that
is not Slack's JSON turned into a plain `SlackApiError`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.telemetry.metrics import SLACK_CALLS, SLACK_RATE_LIMITED

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"


class RateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 retry, also for an HTTP 200 whose body says `ratelimited` (what Slack
    answers some methods), after Retry-After (at least `pause`, at most a minute); counted."""

    def __init__(self, max_retry_count: int = 3, pause: float = 1.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.pause = pause

    async def _can_retry_async(self, **kwargs: Any) -> bool:
        response = kwargs.get("response")
        if response is None:
            return False
        body = response.body if isinstance(response.body, dict) else {}
        limited = response.status_code == 429 or body.get("error") == "ratelimited"
        if limited:
            SLACK_RATE_LIMITED.labels(method=_method_of(kwargs.get("request"))).inc()
        return limited

    async def prepare_for_next_attempt_async(self, **kwargs: Any) -> None:
        state, response = kwargs["state"], kwargs.get("response")
        pause = self.pause
        headers = {k.lower(): v for k, v in (response.headers if response else {}).items()}
        with contextlib.suppress(KeyError, TypeError, ValueError, IndexError):
            value = headers["retry-after"]
            pause = max(float(value[0] if isinstance(value, list) else value), self.pause)
        log.info(
            "Slack %s rate limited; retrying in %.1fs", _method_of(kwargs.get("request")), pause
        )
        await asyncio.sleep(min(pause, 60.0))
        state.next_attempt_requested = True
        state.increment_current_attempt()


class _GatewayErrorRetry(AsyncServerErrorRetryHandler):
    """500/503 as slack_sdk's, and the 502/504 a proxy in front of Slack answers."""

    async def _can_retry_async(self, **kwargs: Any) -> bool:
        response = kwargs.get("response")
        return response is not None and response.status_code in (500, 502, 503, 504)


class RewindWebClient(AsyncWebClient):
    """The Web API client: every call counted, and an answer that is not Slack's JSON (an HTML
    page from a proxy) turned into a `SlackApiError` with error `non_json_response`, never an
    `AttributeError` from deep inside slack_sdk."""

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        SLACK_CALLS.labels(method=api_method).inc()
        try:
            response = await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            if _is_json(getattr(exc.response, "data", None)):
                raise
            raise self._not_json(api_method, exc.response) from None
        except AttributeError:  # slack_sdk reading a 200 text/plain answer as a dict
            raise self._not_json(api_method, None, status=200) from None
        if not _is_json(response.data):
            raise self._not_json(api_method, response)
        return response

    def _not_json(self, method: str, response: Any, status: int = 0) -> SlackApiError:
        status = int(getattr(response, "status_code", 0) or status)
        body = getattr(response, "data", "")
        excerpt = " ".join(str(body).split())[:120]
        plain = AsyncSlackResponse(
            client=self,
            http_verb="POST",
            api_url=f"{self.base_url}{method}",
            req_args={},
            data={"ok": False, "error": "non_json_response"},
            headers={},
            status_code=status,
        )
        return SlackApiError(  # type: ignore[no-untyped-call]
            f"Slack's Web API ({self.base_url}) answered {method} with HTTP {status} and a page "
            f"that is not JSON (a proxy in between?): {excerpt!r}",
            plain,
        )


def _is_json(data: object) -> bool:
    # slack_sdk leaves `{}` when the body was not JSON (an HTML page), a `str` for text/plain.
    return isinstance(data, bytes) or (isinstance(data, dict) and bool(data))


def _method_of(request: Any) -> str:
    url = str(getattr(request, "url", "") or "")
    return url.rsplit("/", 1)[-1].split("?", 1)[0] or "?"


def install_retry_handlers(
    client: AsyncWebClient, *, pause: float = 1.0, ratelimit_retries: int = 3
) -> AsyncWebClient:
    """Retry connection errors, rate limits (429 or `ratelimited`, after Retry-After) and 5xx —
    once each kind is enough."""
    kinds = {type(h) for h in client.retry_handlers}
    if AsyncConnectionErrorRetryHandler not in kinds:
        client.retry_handlers.append(AsyncConnectionErrorRetryHandler(max_retry_count=2))
    client.retry_handlers[:] = [
        h for h in client.retry_handlers if not isinstance(h, AsyncRateLimitErrorRetryHandler)
    ]
    client.retry_handlers.append(RateLimitRetry(max_retry_count=ratelimit_retries, pause=pause))
    if not any(issubclass(k, AsyncServerErrorRetryHandler) for k in kinds):
        client.retry_handlers.append(_GatewayErrorRetry(max_retry_count=2))
    return client


def make_client(token: str, base_url: str | None = None, *, timeout: int = 30) -> RewindWebClient:
    """The Web API client Rewind uses: `base_url` from `SLACK_API_URL`, with retry handlers."""
    url = base_url or DEFAULT_API_URL
    if not url.endswith("/"):
        url += "/"
    client = RewindWebClient(token=token, base_url=url, timeout=timeout)
    install_retry_handlers(client)
    return client


def error(exc: SlackApiError) -> str:
    """Slack's error code of a failed call (`ratelimited`, `channel_not_found`, …)."""
    try:
        return str(exc.response.get("error") or f"http_{exc.response.status_code}")
    except Exception:  # pragma: no cover - a response we cannot read
        return "unknown"
