"""myapp: the sample service Rewind rolls back in its demo and tests.

Stdlib only. Serves /healthz, /api/health and /version on 127.0.0.1, and its own request
counter and latency histogram in Prometheus's text format on /metrics (scrapes are not counted:
they are not traffic). The port comes from $APP_PORT or the file `.port`, the version from the
file `VERSION`; the pid is written to `app.pid` (run.sh and Rewind's resource reading use it).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Feature flag of the release: True means /healthz fails.
BROKEN = False

HERE = Path(__file__).resolve().parent
log = logging.getLogger("myapp")


def read_version() -> str:
    try:
        return (HERE / "VERSION").read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown"


def read_port() -> int:
    value = os.environ.get("APP_PORT") or (HERE / ".port").read_text(encoding="utf-8").strip()
    return int(value)


VERSION = read_version()


def check_health() -> str | None:
    """Return None when healthy, else a one-line description of the failure."""
    if BROKEN:
        return "RuntimeError: coupon service unavailable (pool exhausted)"
    return None


# Prometheus's default buckets, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Requests by handler and status code, and a latency histogram, as Prometheus text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = {}
        self._buckets = [0] * len(BUCKETS)
        self._count = 0
        self._sum = 0.0

    def observe(self, handler: str, code: int, seconds: float) -> None:
        with self._lock:
            key = (handler, code)
            self._requests[key] = self._requests.get(key, 0) + 1
            self._count += 1
            self._sum += seconds
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self._buckets[i] += 1

    def text(self) -> str:
        with self._lock:
            lines = [
                "# HELP http_requests_total Requests answered, by handler and status code.",
                "# TYPE http_requests_total counter",
            ]
            for (handler, code), n in sorted(self._requests.items()):
                lines.append(f'http_requests_total{{handler="{handler}",code="{code}"}} {n}')
            lines += [
                "# HELP http_request_duration_seconds Time to answer a request.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for bound, n in zip(BUCKETS, self._buckets, strict=True):
                lines.append(f'http_request_duration_seconds_bucket{{le="{bound}"}} {n}')
            lines.append(f'http_request_duration_seconds_bucket{{le="+Inf"}} {self._count}')
            lines.append(f"http_request_duration_seconds_sum {self._sum}")
            lines.append(f"http_request_duration_seconds_count {self._count}")
            return "\n".join(lines) + "\n"


METRICS = Metrics()
KNOWN_PATHS = ("/healthz", "/api/health", "/version")


class Handler(BaseHTTPRequestHandler):
    server_version = "myapp/" + VERSION
    _status = 0  # the status code sent, for the request counter

    def _send(self, status: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, METRICS.text(), "text/plain; version=0.0.4")
            return
        start = time.perf_counter()
        self._answer(path)
        handler = path if path in KNOWN_PATHS else "other"  # unknown paths: bounded labels
        METRICS.observe(handler, self._status, time.perf_counter() - start)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def _answer(self, path: str) -> None:
        problem = check_health()
        if path == "/healthz":
            if problem is None:
                self._send(200, "ok\n")
            else:
                log.error("GET /healthz failed: Traceback (most recent call last): %s", problem)
                self._send(500, "error: " + problem + "\n")
        elif path == "/api/health":
            if problem is None:
                body = {"status": "ok", "version": VERSION}
                self._send(200, json.dumps(body), "application/json")
            else:
                log.error("GET /api/health failed: %s", problem)
                body = {"status": "error", "version": VERSION, "error": problem}
                self._send(500, json.dumps(body), "application/json")
        elif path == "/version":
            self._send(200, VERSION + "\n")
        else:
            self._send(404, "not found\n")

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)


class Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # A client that hung up mid-answer (a probe cancelled as its process stopped) did
        # nothing wrong here: a line, not a traceback a log watcher would count as an error.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            log.info("%s hung up before the answer was sent", client_address[0])
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def main() -> None:
    logging.basicConfig(
        filename=str(HERE / "app.log"),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    port = read_port()
    server = Server(("127.0.0.1", port), Handler)
    (HERE / "app.pid").write_text(f"{os.getpid()}\n", encoding="utf-8")
    log.info("started version=%s port=%d pid=%d", VERSION, port, os.getpid())
    try:
        server.serve_forever()
    finally:
        server.server_close()
        log.info("stopped version=%s", VERSION)


if __name__ == "__main__":
    main()
