#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs, starts what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Exact versions from the lock (refresh it: see the README's "Tests"), then Rewind itself on top.
# pip's output is shown only when it fails, and then the run stops.
pip_install() {
  local log; log=$(mktemp)
  python3 -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
  rm -f "$log"
}
pip_install --require-hashes -r requirements.lock
pip_install --no-deps -e .

if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
fi
# A real Prometheus for the metric checks' tests (tests/prometheus_server.py).
if ! command -v prometheus >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
# redis-server itself is needed even when a Redis already answers: the Redis outage, restart
# and Sentinel failover tests start their own servers (tests/redis_servers.py).
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  command -v pg_ctlcluster >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 100); do pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && break; sleep 0.1; done
fi

ruff check bot handlers runners tests
ruff format --check bot handlers runners tests
mypy
# Two test processes (pytest-xdist): the tests mostly wait on real processes, so two at a time
# halve the run; each gets its own Redis database (tests/conftest.py). pytest-benchmark, when a
# machine has it, refuses to load beside xdist, and no test here uses it.
# The process tests (failovers, rolling restarts, killed workers) share 2 cores with real sshd
# hosts and Redis servers; a test that fails is run once more and reported as "R" (a rerun) in the
# output, so a flaky test stays visible. A test that fails twice fails the run.
exec python3 -m pytest -q -p no:cacheprovider -p no:benchmark -n 2 --reruns 1 --reruns-delay 2 -rR "$@"
