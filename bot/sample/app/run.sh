#!/bin/sh
# Control script of myapp: ./run.sh start|stop|restart|status
set -u
cd "$(dirname "$0")" || exit 1
PY=${PYTHON:-python3}
PORT=${APP_PORT:-$(cat .port 2>/dev/null || echo 8000)}

version() { cat VERSION 2>/dev/null || echo unknown; }

# alive PID: the process exists and is not a zombie waiting to be reaped
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ "$state" != Z ] && [ "$state" != X ]
}

# In a releases layout (<workdir>/releases/<version>, `current`), app.pid is a symlink into the
# host's shared/ directory, the same for every release: cleared, never removed.
clear_pid() {
    if [ -L app.pid ]; then : > app.pid; else rm -f app.pid; fi
}

is_running() {
    [ -s app.pid ] && alive "$(cat app.pid)"
}

port_answers() {
    "$PY" -c 'import socket, sys
s = socket.socket()
s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$PORT"
}

start() {
    if is_running; then
        echo "already running $(version) pid $(cat app.pid)"
        return 0
    fi
    nohup setsid "$PY" app.py >> app.log 2>&1 < /dev/null &
    # The pid as started, not as re-read: app.py rewrites app.pid, which is empty for a moment.
    pid=$!
    echo "$pid" > app.pid
    i=0
    while [ "$i" -lt 100 ]; do
        if ! alive "$pid"; then
            echo "failed to start $(version), see app.log" >&2
            clear_pid
            return 1
        fi
        if port_answers; then
            echo "started $(version) pid $pid port $PORT"
            return 0
        fi
        i=$((i + 1))
        sleep 0.1
    done
    echo "started $(version) pid $pid but port $PORT does not answer" >&2
    return 1
}

stop() {
    if ! is_running; then
        clear_pid
        echo "not running"
        return 0
    fi
    pid=$(cat app.pid)
    kill "$pid" 2>/dev/null
    i=0
    while alive "$pid"; do
        i=$((i + 1))
        if [ "$i" -ge 50 ]; then
            kill -9 "$pid" 2>/dev/null
        fi
        sleep 0.1
    done
    clear_pid
    echo "stopped pid $pid"
}

status() {
    if is_running; then
        echo "running $(version) pid $(cat app.pid)"
        return 0
    fi
    echo "stopped"
    return 3
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) stop && start ;;
    status) status ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
