"""The whole rollback through Slack, against a plain parallel OpenSSH script doing the same runbook.

Rewind: `python -m bot serve` and one `python -m bot worker` (the Procfile), real Redis, real
sshd hosts, a real PostgreSQL database at v1.5.0's head; the bench sends a signed
`/rollback myapp v1.4.2 …` and clicks each button (Roll back, Approve downgrade) as soon as it
shows, as signed block_actions. Monitoring lasts 1 s. Rewind's time runs from the command to the
incident completed (report written), minus only the time its buttons were on screen before the
bench clicked them (a person's time, not Rewind's); the time before they showed is Rewind's.

Baseline: the same runbook as one bash script with plain OpenSSH, every host at once (`&` +
`wait`), host keys checked against the same known_hosts, one shared connection per host
(ControlMaster, as Rewind keeps one connection per host for the incident):

1. assess: every host's version (`git describe`), `alembic current` on the database's host in
   the same session; the operator's clone fetched, `git log` target..deployed;
2. code: the hotfix branch at the target, pushed to origin;
3. database: `pg_dump` to a backup file (checked non-empty), `alembic downgrade`, `alembic
   current`;
4. redeploy, every host: `git fetch` of the hotfix branch + checkout, install (`pip install -r
   requirements.txt`) if requirements.txt changed (the runbook's "if needed", Rewind's rule too),
   restart, status, version;
5. verify: every health URL until it answers (200 / `"status": "ok"`), each host's last log
   lines read and grepped for errors, the smoke tests;
6. monitor: each host's log followed, and its health read, for the same window as Rewind's;
7. report: a file written.

Both start from every host on v1.5.0 (the database at its head) and must end on v1.4.2 with the
database at v1.4.2's head (checked after each run, untimed). Each size runs `reps` times,
alternating which of the two goes first; the medians are reported.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.lab import (
    INSTALL,
    PY,
    SECRET,
    Lab,
    Proc,
    bot_env,
    lab,
    pg_database,
    private_redis,
    processes,
    running,
)
from bot.store.redis_store import RedisStore, connect
from bot.workflow.model import StepStatus
from bot.workflow.steps import STEPS
from tests.fakes import with_step_commands
from tests.harness import write_apps
from tests.processes import free_port, wait_http
from tests.slack_fake import SlackFake, buttons, click, send_command

SIZES = (1, 5, 20, 50)
REPS = 3
MONITOR = 1.0
TARGET, BAD = "v1.4.2", "v1.5.0"
TARGET_REVISION = "b2c3d4e5f6a1"  # v1.4.2's alembic head in the sample app
GATES = (("Roll back", "U0CAROL"), ("Approve downgrade", "U0ALICE"))
ERRORS = "error|critical|traceback"
GOALS = {20: 1.3, 50: 1.2}
TITLES = {spec.id: spec.title for spec in STEPS}


@dataclass
class Run:
    """One rollback by Rewind."""

    total: float  # command -> completed
    waited: float  # buttons on screen until the bench's click (subtracted)
    before_buttons: float  # gate steps' end -> their buttons on screen (Rewind's time)
    steps: list[tuple[str, float]] = field(default_factory=list)
    gaps: float = 0.0  # between steps: queue, transitions, the buttons' wait
    connections: float = 0.0  # SSH connections per host, at the hosts' sshd
    sessions: float = 0.0  # SSH sessions per host
    cpu: dict[str, float] = field(default_factory=dict)  # the worker's CPU seconds, by step
    serve_cpu: float = 0.0
    busy: float = 0.0  # the machine's CPUs busy during the run, 0..1 (everyone's work)

    @property
    def net(self) -> float:
        return self.total - self.waited


@dataclass
class ScriptRun:
    """One run of the plain script: its wall time and each phase's."""

    took: float
    phases: list[tuple[str, float]] = field(default_factory=list)
    cpu: float = 0.0  # the script's own processes (bash, ssh, curl, git): CPU seconds
    busy: float = 0.0  # the machine's CPUs busy during the run, 0..1


@dataclass
class Row:
    hosts: int
    runs: list[Run] = field(default_factory=list)
    scripts: list[ScriptRun] = field(default_factory=list)
    error: str = ""  # why this size was not measured (the other sizes still are)

    @property
    def rewind(self) -> float:
        return statistics.median(r.net for r in self.runs)

    @property
    def baseline(self) -> float:
        return statistics.median(s.took for s in self.scripts)

    @property
    def ratio(self) -> float:
        return self.rewind / self.baseline

    @property
    def goal(self) -> float | None:
        return GOALS.get(self.hosts)

    @property
    def median_run(self) -> Run:
        return sorted(self.runs, key=lambda r: r.net)[len(self.runs) // 2]

    @property
    def median_script(self) -> ScriptRun:
        return sorted(self.scripts, key=lambda s: s.took)[len(self.scripts) // 2]


def config(the_lab: Lab) -> dict[str, Any]:
    cfg = with_step_commands(the_lab.env.app_config())
    cfg["deploy"]["commands"]["install"] = INSTALL
    cfg["monitor"] = {"duration": f"{MONITOR:g}s", "interval": f"{MONITOR:g}s"}
    cfg["verify"] = {"health_timeout": "60s", "health_interval": "0.2s"}
    return cfg


# ---- Rewind -----------------------------------------------------------------------------------


@dataclass
class Bot:
    """`serve` + one `worker`, up for every run of a size (as a bot in service is)."""

    the_lab: Lab
    slack: SlackFake
    store: RedisStore
    events: str
    procs: list[Proc]
    seen: set[str] = field(default_factory=set)  # incidents of earlier runs
    clicked: set[str] = field(default_factory=set)  # gates already clicked (`gate_key`)

    async def rollback(self) -> Run:
        await self.store.unfreeze("myapp")  # the last run's rollback froze deploys
        conns = {h.name: h.ssh_connections() for h in self.the_lab.hosts}
        sessions = {h.name: h.ssh_sessions() for h in self.the_lab.hosts}
        gates: list[tuple[float, float]] = []  # (buttons on screen, clicked)
        worker, serve = (next(p.popen.pid for p in self.procs if p.name == n)
                         for n in ("worker", "serve"))  # fmt: skip
        cpu: dict[str, float] = {}
        last, serve_before, machine_before = cpu_seconds(worker), cpu_seconds(serve), busy_now()
        async with aiohttp.ClientSession() as session:
            began = time.time()
            text = f"myapp {TARGET} checkout returns 500"
            url = self.slack.response_url(f"start-{time.time_ns()}")
            await send_command(session, self.events, SECRET, text=text, response_url=url)
            incident = None
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                running(self.procs)()
                recent = await self.store.recent_incidents(1)
                incident = recent[0] if recent and recent[0].id not in self.seen else None
                now = cpu_seconds(worker)
                step = "between steps" if incident is None else next(
                    (TITLES[s.id] for s in incident.steps if s.status == StepStatus.RUNNING),
                    "between steps",
                )  # fmt: skip
                cpu[step] = cpu.get(step, 0.0) + now - last
                last = now
                if incident is not None and not incident.status.open:
                    break
                await click_ready_gates(self.slack, session, self.events, self.clicked, gates)
                await asyncio.sleep(0.02)
        if incident is None or incident.status.value != "completed":
            why = incident and [s.error for s in incident.steps if s.error]
            raise RuntimeError(f"Rewind's rollback did not complete: {incident and incident.status}"
                               f" {why}")  # fmt: skip
        self.seen.add(incident.id)
        run = breakdown(await self.store.timeline(incident.id), began, gates)
        count = len(self.the_lab.hosts)
        run.connections = sum(h.ssh_connections() - conns[h.name] for h in self.the_lab.hosts)
        run.sessions = sum(h.ssh_sessions() - sessions[h.name] for h in self.the_lab.hosts)
        run.connections, run.sessions = run.connections / count, run.sessions / count
        run.cpu, run.serve_cpu = cpu, cpu_seconds(serve) - serve_before
        run.busy = busy_share(machine_before, busy_now())
        return run


def cpu_seconds(pid: int) -> float:
    """CPU time of process `pid` and of its children it waited for (git, …), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in stat[11:15]) / os.sysconf("SC_CLK_TCK")


def busy_now() -> tuple[float, float]:
    """The machine's (busy, total) CPU time so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


def busy_share(before: tuple[float, float], after: tuple[float, float]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


@asynccontextmanager
async def bot(the_lab: Lab, redis_url: str, tmp: Path) -> Any:
    apps_file = write_apps(tmp / "apps.yaml", {"myapp": config(the_lab)}, tmp / "incidents")
    port = free_port()
    async with SlackFake() as slack:
        env = bot_env(slack.api_url, redis_url, apps_file, tmp / "ws", port)
        base = f"http://127.0.0.1:{port}"
        store = RedisStore(connect(redis_url))
        commands = [("serve", [PY, "-m", "bot", "serve"]), ("worker", [PY, "-m", "bot", "worker"])]
        try:
            with processes(commands, env, tmp / "logs") as procs:
                await wait_http(f"{base}/healthz", check=running(procs))
                yield Bot(the_lab, slack, store, f"{base}/slack/events", procs)
        finally:
            await store.r.aclose()


def shown_at(slack: SlackFake, ts: str, label: str) -> float:
    """When the Slack stand-in received the message `ts` carrying the button `label` (the
    button itself: the parent's checklist names "Roll back" steps from its first post on)."""
    for call in slack.calls:
        if call.method not in ("chat.postMessage", "chat.update"):
            continue
        said = call.response if isinstance(call.response, dict) else {}
        if str(said.get("ts")) == ts and any(label.lower() in b.text.lower()
                                             for b in buttons(_decoded(call.args))):  # fmt: skip
            return call.at
    return time.time()


def _decoded(args: dict[str, Any]) -> dict[str, Any]:
    """A call's blocks and attachments as lists (a client may send them as JSON text)."""
    out = dict(args)
    for key in ("blocks", "attachments"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


_GATE_BLOCK = re.compile(r"^(?:ask|gate)-(.+?)(?:-\d+)?$")  # the parent's and the thread's


def gate_key(ts: str, block_id: str, label: str) -> str:
    """One gate, wherever its buttons show (the parent at once, then its thread message)."""
    found = _GATE_BLOCK.match(block_id)
    return f"{found.group(1) if found else ts}:{label}"


async def click_ready_gates(
    slack: SlackFake,
    session: Any,
    events: str,
    clicked: set[str],
    gates: list[tuple[float, float]] | None = None,
    channel: str = "C0INCIDENT",
) -> None:
    """Click each new gate's button as soon as it shows, on the parent or in the thread,
    whichever first (once per gate); in `gates`, when each showed and when it was clicked."""
    for msg in slack.messages(channel):
        ts = str(msg.get("ts"))
        for button in buttons(msg):
            for label, user in GATES:
                key = gate_key(ts, button.block_id, label)
                if label.lower() not in button.text.lower() or key in clicked:
                    continue
                clicked.add(key)
                if gates is not None:
                    gates.append((shown_at(slack, ts, label), time.time()))
                await click(session, events, SECRET, message=msg, label=label, user_id=user,
                            channel_id=channel,
                            response_url=slack.response_url(f"click-{ts}"))  # fmt: skip


def _at(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(entry["at"])).timestamp()


def breakdown(
    timeline: list[dict[str, Any]], began: float, gates: list[tuple[float, float]]
) -> Run:
    steps: list[tuple[str, float]] = []
    started: dict[str, float] = {}
    asked: list[float] = []  # gate steps' ends
    busy = 0.0
    for entry in timeline:
        what, at = str(entry["what"]), _at(entry)
        if what.startswith("step started: "):
            started[what.removeprefix("step started: ")] = at
        elif what.startswith(("step succeeded: ", "step failed: ")):
            title = what.split(": ", 1)[1]
            took = at - started.get(title, at)
            steps.append((title, took))
            busy += took
            if entry.get("result") == "waiting":
                asked.append(at)
    end = max((_at(e) for e in timeline), default=began)
    waited = sum(max(0.0, clicked - shown) for shown, clicked in gates)
    before = sum(max(0.0, shown - at) for at, (shown, _) in zip(asked, gates, strict=False))
    run = Run(end - began, waited, before, steps)
    run.gaps = run.total - waited - busy
    return run


# ---- the plain script -------------------------------------------------------------------------


def baseline_script(the_lab: Lab, work: Path, master: Path, hotfix: str) -> str:
    """The runbook as an engineer would script it with plain OpenSSH, every host at once."""
    env = the_lab.env
    assert env.repo is not None
    wd = shlex.quote(env.workdir)
    q = shlex.quote
    db = env.hosts[0]
    backup = q(str(db.real_dir.parent / "backups" / f"script-{time.time_ns()}.sql"))
    clone = q(str(work / "clone"))
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def ssh(host: Any, remote: str) -> str:
        return " ".join(q(a) for a in [*the_lab.ssh_argv(host, master), f"cd {wd} && {remote}"])

    def out(host: Any, what: str) -> str:
        return q(str(logs / f"{what}-{host.name}.log"))

    alembic = "alembic -c alembic.ini"
    lines = [
        "set -eu",
        'm() { printf \'@@ %s %s\\n\' "$1" "$(date +%s.%N)"; }',
        'all() { f=0; for j in $(jobs -p); do wait "$j" || f=1; done; [ "$f" = 0 ]; }',
        "m assess",
    ]
    for h in env.hosts:
        read = "git describe --tags --always" + (f" && {alembic} current" if h is db else "")
        lines.append(f"{ssh(h, read)} > {out(h, 'assess')} 2>&1 &")
    lines.append(
        f"( [ -d {clone}/.git ] || git clone -q {q(str(env.repo.origin))} {clone}; "
        f"git -C {clone} fetch -q --tags origin; "
        f"git -C {clone} log --oneline {TARGET}..{BAD} ) > {q(str(logs / 'git-log.log'))} 2>&1 &"
    )
    lines += ["all", "m code"]
    # As Rewind does (it recommends the reverts here): the deployed version's main line
    # reverted, newest first, on a branch pushed to origin.
    git = f"git -C {clone} -c user.name=oncall -c user.email=oncall@example.com"
    lines += [
        f"{git} checkout -q --force -B {q(hotfix)} {BAD}",
        f"for c in $({git} rev-list --first-parent {TARGET}..{BAD}); do",
        f'  if [ "$({git} rev-list --parents -n 1 "$c" | wc -w)" -gt 2 ]; then m1="-m 1"; '
        'else m1=""; fi',
        f'  {git} revert --no-edit $m1 "$c" > /dev/null',
        "done",
        f"{git} diff --quiet {TARGET} HEAD --",
        f"{git} push -q origin {q(hotfix)}",
    ]
    lines.append("m db_backup")
    bdir = q(str(db.real_dir.parent / "backups"))
    dump = f'mkdir -p {bdir} && pg_dump --clean --if-exists "$(cat .pg_url)" > {backup}'
    lines.append(f"{ssh(db, f'{dump} && test -s {backup}')} > {out(db, 'backup')} 2>&1")
    lines.append("m db_downgrade")
    down = f"{alembic} downgrade {TARGET_REVISION} && {alembic} current"
    lines.append(f"{ssh(db, down)} > {out(db, 'downgrade')} 2>&1")
    lines.append("m redeploy")
    # Install "if needed", as the runbook says and Rewind does: when requirements.txt changed.
    deps = "git rev-parse HEAD:requirements.txt 2>/dev/null || true"
    deploy = (
        f"before=$({deps}) && git fetch --tags --force origin {q(hotfix)}"
        " && git checkout --force FETCH_HEAD"
        f' && if [ "$({deps})" != "$before" ]; then {INSTALL}; fi'
        " && ./run.sh restart && ./run.sh status && git describe --tags --always"
    )
    lines += [f"{ssh(h, deploy)} > {out(h, 'redeploy')} 2>&1 &" for h in env.hosts]
    lines += ["all", "m verify"]
    for h in env.hosts:
        health = (
            f"i=0; until [ \"$(curl -s -o /dev/null -w '%{{http_code}}' {h.health_url})\" = 200 ]"
            "; do i=$((i+1)); [ $i -lt 300 ]; sleep 0.2; done; "
            f'i=0; until curl -s {h.api_health_url} | grep -q \'"status": *"ok"\''
            "; do i=$((i+1)); [ $i -lt 300 ]; sleep 0.2; done"
        )
        tail = ssh(h, "tail -n 50 app.log")
        lines.append(f"( {health}; {tail} | grep -ciE {q(ERRORS)} || true ) "
                     f"> {out(h, 'verify')} 2>&1 &")  # fmt: skip
    smoke = ssh(db, "./smoke.sh login && ./smoke.sh checkout")
    lines += [f"{smoke} > {out(db, 'smoke')} 2>&1 &", "all", "m monitor"]
    for h in env.hosts:
        follow = ssh(h, f"(timeout {MONITOR:g} tail -n 0 -f app.log || true)")
        check = f"[ \"$(curl -s -o /dev/null -w '%{{http_code}}' {h.health_url})\" = 200 ]"
        lines.append(f"( {follow} | grep -ciE {q(ERRORS)} || true; {check} ) "
                     f"> {out(h, 'monitor')} 2>&1 &")  # fmt: skip
    lines += ["all", "m report"]
    lines.append(f"printf '# rollback to {TARGET}\\n\\n%s\\n' \"$(cat {q(str(logs))}/*.log)\""
                 f" > {q(str(work / 'report.md'))}")  # fmt: skip
    lines.append("m end")
    return "\n".join(lines)


def baseline_run(the_lab: Lab, work: Path, n: int) -> ScriptRun:
    master = Path(tempfile.mkdtemp(prefix="rw-cm-"))  # short: a socket path has 108 bytes
    script = baseline_script(the_lab, work, master, f"hotfix/rollback-myapp-{TARGET}-script{n}")
    path = work / f"rollback-{n}.sh"  # a file: at 50 hosts it is longer than one argument may be
    path.write_text(script + "\n")
    try:
        machine_before, used = busy_now(), resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        proc = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=600)
        took = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
        busy = busy_share(machine_before, busy_now())
        cpu += masters_cpu(master)  # daemons: not among the children waited for
    finally:
        the_lab.end_masters(master)
        subprocess.run(["rm", "-rf", str(master)], check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"baseline script failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return ScriptRun(took, phases(proc.stdout), cpu, busy)


def masters_cpu(master: Path) -> float:
    """CPU seconds of the ssh processes still holding connections under `master`."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(master).encode() in cmdline:
                total += cpu_seconds(int(proc.name))
    return total


def phases(stdout: str) -> list[tuple[str, float]]:
    marks = [ln.split()[1:] for ln in stdout.splitlines() if ln.startswith("@@ ")]
    return [(a[0], float(b[1]) - float(a[1])) for a, b in itertools.pairwise(marks)]


# ---- both -------------------------------------------------------------------------------------


def check_rolled_back(the_lab: Lab, who: str) -> None:
    """Every host on the target and healthy, the database at the target's head."""
    for host in the_lab.hosts:
        got = "v" + host.run("cat VERSION").strip()
        if got != TARGET or host.health_status() != 200:
            raise RuntimeError(f"after {who}: {host.name} is on {got}, not {TARGET}, or unhealthy")
    current = the_lab.hosts[0].run("alembic -c alembic.ini current 2>/dev/null")
    if TARGET_REVISION not in current:
        raise RuntimeError(f"after {who}: the database is at {current.strip()!r}")


def order(reps: int) -> Iterator[tuple[int, str]]:
    """Rewind first, then the script; then the other way round; and so on."""
    for rep in range(reps):
        pair = ("rewind", "script") if rep % 2 == 0 else ("script", "rewind")
        for who in pair:
            yield rep, who


async def measure(sizes: Sequence[int] = SIZES, reps: int = REPS) -> list[Row]:
    rows: list[Row] = []
    for count in sizes:
        with (
            tempfile.TemporaryDirectory(prefix="rewind-bench-rollback-") as tmpdir,
            private_redis() as redis_url,
            pg_database() as db_url,
            lab(count, db_url=db_url) as the_lab,
        ):
            tmp = Path(tmpdir)
            row = Row(count)
            rows.append(row)
            try:
                async with bot(the_lab, redis_url, tmp) as rewind:
                    for rep, who in order(reps):
                        the_lab.reset(db_head=True)
                        if who == "rewind":
                            row.runs.append(await rewind.rollback())
                        else:
                            row.scripts.append(baseline_run(the_lab, tmp / "script", rep))
                        check_rolled_back(the_lab, who)
            except Exception as exc:  # said in the table; the other sizes are still measured
                traceback.print_exc()
                row.error = f"{type(exc).__name__}: {str(exc)[:300]}"
                continue
            print(f"  rollback {count} host(s): Rewind {[round(r.net, 1) for r in row.runs]} s, "
                  f"script {[round(s.took, 1) for s in row.scripts]} s", flush=True)  # fmt: skip
    return rows


def table(rows: Sequence[Row]) -> list[str]:
    out = [
        "| hosts | Rewind | script | ratio | goal | runs (Rewind / script) "
        "| SSH connections per host (Rewind) |",
        "|---:|---:|---:|---:|:---:|---|---:|",
    ]
    for r in rows:
        if r.error or not r.runs or not r.scripts:
            out.append(f"| {r.hosts} | **not measured** | | | | {r.error or 'no run'} | |")
            continue
        goal = "" if r.goal is None else f"≤ {r.goal}×: " + ("met" if r.ratio <= r.goal
                                                            else "**missed**")  # fmt: skip
        each = (", ".join(f"{x.net:.1f}" for x in r.runs) + " / "
                + ", ".join(f"{s.took:.1f}" for s in r.scripts))  # fmt: skip
        conns = statistics.median(x.connections for x in r.runs)
        out.append(f"| {r.hosts} | {r.rewind:.1f} s | {r.baseline:.1f} s | {r.ratio:.2f}× "
                   f"| {goal} | {each} | {conns:g} |")  # fmt: skip
    done = [r for r in rows if r.runs and r.scripts and not r.error]
    at = next((r for r in done if r.hosts == 20), done[-1] if done else None)
    if at is not None:
        out += ["", *steps_table(at)]
    return out


SCRIPT_PHASE = {
    "Assess the situation": "assess",
    "Roll back code": "code",
    "Back up database, preview downgrade": "db_backup",
    "Roll back database": "db_downgrade",
    "Redeploy previous version": "redeploy",
    "Verify rollback": "verify",
    "Monitor": "monitor",
    "Incident report": "report",
}


def steps_table(row: Row) -> list[str]:
    run, script = row.median_run, row.median_script
    theirs = dict(script.phases)
    out = [
        f"Where the time goes at {row.hosts} hosts (the median run of each; the steps run one "
        "after another, so this is the critical path). *Worker CPU* is the CPU time Rewind's "
        "worker process (and the git it ran) used during the step:",
        "",
        "| step | Rewind | worker CPU | script |",
        "|---|---:|---:|---:|",
    ]
    for title, took in run.steps:
        phase = SCRIPT_PHASE.get(title)
        other = f"{theirs[phase]:.2f} s" if phase in theirs else "—"
        out.append(f"| {title} | {took:.2f} s | {run.cpu.get(title, 0.0):.2f} s | {other} |")
    between = run.gaps - run.before_buttons
    out.append(f"| between steps (queue, transitions, Redis) | {between:.2f} s "
               f"| {run.cpu.get('between steps', 0.0):.2f} s | — |")  # fmt: skip
    out.append(f"| gate steps' end → their buttons on screen | {run.before_buttons:.2f} s | | — |")
    out.append(f"| **total** | **{run.net:.2f} s** | **{sum(run.cpu.values()):.2f} s** "
               f"| **{script.took:.2f} s** |")  # fmt: skip
    out.append(f"| buttons on screen until clicked (subtracted) | {run.waited:.2f} s | | — |")
    out += ["", *step_medians(row)]
    out += [
        "",
        f"CPU of the orchestration itself: Rewind's worker {sum(run.cpu.values()):.1f} s and "
        f"`serve` {run.serve_cpu:.1f} s; the script's bash, ssh (their shared connections "
        f"included), curl and git {script.cpu:.1f} s. The machine's 2 cores were "
        f"{run.busy:.0%} busy during Rewind's run and {script.busy:.0%} during the script's "
        "(everything on the machine: the hosts' sshd and commands, the apps, PostgreSQL, "
        "Redis, and other users' work).",
    ]
    return out


def step_medians(row: Row) -> list[str]:
    """Each step's median over all runs of the size (steadier than one run's breakdown)."""
    if len(row.runs) < 2:
        return []
    ours: dict[str, list[float]] = {}
    for run in row.runs:
        for title, took in run.steps:
            ours.setdefault(title, []).append(took)
        ours.setdefault(BUTTONS, []).append(run.before_buttons)
    theirs: dict[str, list[float]] = {}
    for script in row.scripts:
        for phase, took in script.phases:
            theirs.setdefault(phase, []).append(took)
    out = [
        f"Each step's median over the {len(row.runs)} runs of each at {row.hosts} hosts:",
        "",
        "| step | Rewind | script | difference |",
        "|---|---:|---:|---:|",
    ]
    for title, took in ours.items():
        phase = SCRIPT_PHASE.get(title)
        mine = statistics.median(took)
        other = statistics.median(theirs[phase]) if phase in theirs else 0.0
        shown = f"{other:.2f} s" if phase in theirs else "—"
        out.append(f"| {title} | {mine:.2f} s | {shown} | {mine - other:+.2f} s |")
    return out


BUTTONS = "gate steps' end → buttons on screen"


def main(
    quick: bool = False, sizes: Sequence[int] | None = None, reps: int | None = None
) -> list[Row]:
    """`sizes`, `reps`: instead of the defaults (`--hosts`, `--runs`)."""
    chosen = sizes or ((1,) if quick else SIZES)
    return asyncio.run(measure(chosen, reps or (1 if quick else REPS)))


if __name__ == "__main__":
    for line in table(main()):
        print(line)
