"""Local stand-ins that speak Datadog's metrics query API and a JSON metrics URL, on port 0.

`DatadogStandIn` answers `GET /api/v1/query` as Datadog does: 403 without the right
`DD-API-KEY`/`DD-APPLICATION-KEY` headers, else the series set for the query (an unknown query:
no series). `JsonStandIn` answers any path with the JSON (or the status) set for it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

API_KEY = "dd-api-0123456789abcdef"
APP_KEY = "dd-app-fedcba9876543210"


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class DatadogStandIn:
    series: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def query(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.path, dict(request.query), dict(request.headers)))
        keys = (request.headers.get("DD-API-KEY"), request.headers.get("DD-APPLICATION-KEY"))
        if keys != (API_KEY, APP_KEY):
            return web.json_response({"errors": ["Forbidden"]}, status=403)
        q = request.query
        if not {"from", "to", "query"} <= set(q) or int(q["to"]) - int(q["from"]) <= 0:
            return web.json_response({"errors": ["from, to and query are required"]}, status=400)
        if q["query"].startswith("bad"):
            return web.json_response({"status": "error", "error": "Rule 'scope_expr' didn't match"},
                                     status=400)  # fmt: skip
        return web.json_response({"status": "ok", "series": self.series.get(q["query"], [])})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/query", self.query)
        self._runner = await serve(app)
        self.url = base_url(self._runner)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class JsonStandIn:
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> (status, body)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def answer(self, request: web.Request) -> web.Response:
        if request.path == "/slow":
            await asyncio.sleep(6)  # past the checks' 5 s timeout in the tests
        status, body = self.answers.get(request.path, (404, '{"error": "not found"}'))
        return web.Response(status=status, text=body, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.answer)
        self._runner = await serve(app)
        self.url = base_url(self._runner)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def serve(app: web.Application) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def base_url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"
