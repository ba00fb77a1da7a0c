"""myapp: the sample service Rewind rolls back in its demo and tests.

Stdlib only. Serves /healthz, /api/health and /version on 127.0.0.1. The port comes from
$APP_PORT or the file `.port`, the version from the file `VERSION`.
"""

from __future__ import annotations

import json
import logging
import os
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


class Handler(BaseHTTPRequestHandler):
    server_version = "myapp/" + VERSION

    def _send(self, status: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
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


def main() -> None:
    logging.basicConfig(
        filename=str(HERE / "app.log"),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    port = read_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    (HERE / "app.pid").write_text(f"{os.getpid()}\n", encoding="utf-8")
    log.info("started version=%s port=%d pid=%d", VERSION, port, os.getpid())
    try:
        server.serve_forever()
    finally:
        server.server_close()
        log.info("stopped version=%s", VERSION)


if __name__ == "__main__":
    main()
