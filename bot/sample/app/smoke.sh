#!/bin/sh
# Functional smoke tests of myapp: ./smoke.sh login|checkout
cd "$(dirname "$0")" || exit 1
exec "${PYTHON:-python3}" - "$@" <<'PY'
import json
import os
import sys
import urllib.error
import urllib.request

port = os.environ.get("APP_PORT") or open(".port").read().strip()
base = "http://127.0.0.1:%s" % port


def get(path):
    url = base + path
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            status, body = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    except OSError as exc:
        status, body = 0, str(exc)
    print("GET %s -> %s %s" % (url, status, body.strip()[:200]))
    return status, body


def api_ok():
    status, body = get("/api/health")
    try:
        return status == 200 and json.loads(body).get("status") == "ok"
    except ValueError:
        return False


def login():
    status, _ = get("/healthz")
    return status == 200 and api_ok()


def checkout():
    ok = api_ok()
    status, _ = get("/version")
    return ok and status == 200


tests = {"login": login, "checkout": checkout}
if len(sys.argv) != 2 or sys.argv[1] not in tests:
    print("usage: smoke.sh login|checkout", file=sys.stderr)
    sys.exit(2)
name = sys.argv[1]
passed = tests[name]()
print("smoke %s: %s" % (name, "PASS" if passed else "FAIL"))
sys.exit(0 if passed else 1)
PY
