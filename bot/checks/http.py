"""One GET that answers JSON, with every way it can fail said in plain words."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

EXCERPT = 200
MAX_BODY = 10 * 2**20  # a query that answers more is too broad to judge anyway


def where(url: str) -> str:
    """`scheme://host:port` of `url`: no path, query or credentials (they may hold a token)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


@dataclass(frozen=True)
class Answer:
    """What came back: `problem` is '' when the server answered (any status) with JSON or not."""

    status: int | None
    body: object = None  # the parsed JSON, None when the body is not JSON
    text: str = ""  # the body's start, for a message
    problem: str = ""


async def get_json(
    url: str,
    *,
    who: str,
    timeout: float,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """GET `url`; never raises for the network or the server (`problem` says what went wrong)."""
    at = f"{who} at {where(url)}"
    try:
        limit = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=limit) as session,
            session.get(url, params=params, headers=headers, allow_redirects=False) as resp,
        ):
            status, data = resp.status, bytearray()
            async for chunk in resp.content.iter_chunked(2**16):
                data += chunk
                if len(data) > MAX_BODY:
                    break
    except TimeoutError:
        return Answer(None, problem=f"{at} did not answer within {timeout:g} s")
    except aiohttp.ClientConnectorError as exc:
        return Answer(None, problem=f"{at} could not be reached ({_why(exc.os_error)})")
    except (aiohttp.ClientError, ValueError) as exc:  # also an invalid URL
        return Answer(None, problem=f"{at} failed: {type(exc).__name__}: {str(exc)[:EXCERPT]}")
    if len(data) > MAX_BODY:
        return Answer(status, problem=f"{at} answered more than {MAX_BODY // 2**20} MB")
    raw = data.decode("utf-8", errors="replace")
    try:
        body: object = json.loads(raw)
    except ValueError:
        body = None
    return Answer(status, body, raw[:EXCERPT].strip())


def _why(err: OSError) -> str:
    """In words: asyncio's own strerror is "Connect call failed (…)", its errno says why."""
    why = err.strerror or ""
    if err.errno and err.errno > 0 and (not why or why.startswith("Connect call failed")):
        why = os.strerror(err.errno)
    return (why or str(err)).lower()
