#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs; the tests start their servers.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests start their own Redis and PostgreSQL (tests/redis_servers.py, tests/fixtures_hosts.py:
# free ports, temp dirs, stopped at the end) and never use a server they did not start; they need
# the programs: redis-server, PostgreSQL's initdb/pg_ctl, sshd, and a real Prometheus for the
# metric checks' tests (tests/prometheus_server.py). Those missing are installed while pip
# installs and the linters run (the whole run has a 20-minute budget); apt's output is shown only
# when it fails.
missing=()
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v prometheus >/dev/null || missing+=(prometheus)
apt_log=$(mktemp)
apt_pid=""
if [ ${#missing[@]} -gt 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") \
    >"$apt_log" 2>&1 &
  apt_pid=$!
fi

# Exact versions from the lock (refresh it: see the README's "Tests"), then Rewind itself on top.
# pip's output is shown only when it fails, and then the run stops.
pip_install() {
  local log; log=$(mktemp)
  python3 -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
  rm -f "$log"
}
pip_install --require-hashes -r requirements.lock
pip_install --no-deps -e .

ruff check bot runners tests bench
ruff format --check bot runners tests bench
mypy

if [ -n "$apt_pid" ] && ! wait "$apt_pid"; then
  cat "$apt_log"; echo "Installing ${missing[*]} failed (above)." >&2; exit 1
fi
rm -f "$apt_log"

# Three test processes (pytest-xdist) on CI's two cores: the tests mostly wait on real processes
# (sshd hosts, apps restarting, Slack's pacing), so three at a time keep the cores busy without
# starving them (measured: 800 s with three against more than 1,080 s with two, on a loaded
# machine); each starts its own Redis and PostgreSQL. A file's tests stay on one process
# (--dist loadfile): some modules share one world across their tests, in order. pytest-benchmark, when a machine has
# it, refuses to load beside xdist, and no test here uses it.
# The process tests (failovers, rolling restarts, killed workers) share 2 cores with real sshd
# hosts and Redis servers; a test that fails is run once more and reported as "R" (a rerun) in the
# output, so a flaky test stays visible. A test that fails twice fails the run.
#
# A run that hangs must still end, and end the servers it started: the whole pytest run has a
# deadline (REWIND_TEST_DEADLINE seconds; each test also has pytest-timeout's 120 s), and every
# process still carrying this run's mark in its environment is stopped afterwards, so none is
# left holding the terminal (or CI's pipe) open, whatever became of the test that started it.
export REWIND_TEST_RUN="rewind-test-$$-$RANDOM"
status=0
timeout --foreground -s INT -k 60 "${REWIND_TEST_DEADLINE:-1080}" \
  python3 -m pytest -q -p no:cacheprovider -p no:benchmark -n 3 --dist loadfile --reruns 1 --reruns-delay 2 -rR --durations=10 "$@" ||
  status=$?
[ "$status" -eq 124 ] && echo "The tests did not end within ${REWIND_TEST_DEADLINE:-1080} s: stopped." >&2
for environ in /proc/[0-9]*/environ; do
  pid=${environ#/proc/}; pid=${pid%/environ}
  [ "$pid" = "$$" ] && continue
  if grep -qxzF "REWIND_TEST_RUN=$REWIND_TEST_RUN" "$environ" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null || true
  fi
done
exit "$status"
