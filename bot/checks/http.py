"""One GET that answers JSON, with every way it can fail said in plain words."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

EXCERPT = 200


def where(url: str) -> str:
    """`scheme://host:port` of `url`: no path, query or credentials (they may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


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
            raw = await resp.text(errors="replace")
            status = resp.status
    except TimeoutError:
        return Answer(None, problem=f"{at} did not answer within {timeout:g} s")
    except aiohttp.ClientConnectorError as exc:
        err = exc.os_error
        # asyncio's strerror is "Connect call failed (…)"; the errno says why in words.
        why = os.strerror(err.errno) if err.errno else err.strerror or str(err)
        return Answer(None, problem=f"{at} could not be reached ({why.lower()})")
    except (aiohttp.ClientError, ValueError) as exc:  # also an invalid URL
        return Answer(None, problem=f"{at} failed: {type(exc).__name__}: {str(exc)[:EXCERPT]}")
    try:
        body: object = json.loads(raw)
    except ValueError:
        body = None
    return Answer(status, body, raw[:EXCERPT].strip())
