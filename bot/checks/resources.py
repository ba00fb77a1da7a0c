"""Each host's resource usage, read over the SSH session the monitor keeps: no agent.

One read-only command prints /proc/stat twice 0.2 s apart (CPU), /proc/meminfo (memory),
`df -P` of the app's workdir (disk), and the service's own /proc/<pid>/stat and status (its CPU
and RSS; the pid from the app's pidfile). A pure parser turns that into a `ResourceUsage`,
judged in percent against the apps file's `resources:` thresholds.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

# Constant: the only values, the workdir and the pidfile, are shell-quoted in `command()`.
SNIPPET = r"""pid=$(head -n 1 -- "$pidfile" 2>/dev/null)
case "$pid" in ''|*[!0-9]*) pid= ;; esac
sample() {
  echo "@@stat$1"; grep '^cpu' /proc/stat
  echo "@@pid$1"; if [ -n "$pid" ]; then cat "/proc/$pid/stat" 2>/dev/null; fi
}
sample 1; sleep 0.2; sample 2
echo @@meminfo; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo
echo @@status; if [ -n "$pid" ]; then grep '^VmRSS:' "/proc/$pid/status" 2>/dev/null; fi
echo @@df; df -P -k . | tail -n 1
echo @@end"""
_DF = re.compile(r"(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(.*)$")


class ResourcesConfig(BaseModel):
    """`resources: {cpu, memory, disk}`: the most each may use on a host, in percent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: float = Field(default=90, gt=0, le=100)
    memory: float = Field(default=90, gt=0, le=100)
    disk: float = Field(default=95, gt=0, le=100)


def command(workdir: str, pidfile: str = "app.pid") -> str:
    """The read-only command, run in `workdir` (`pidfile` is relative to it, or absolute)."""
    return f"cd {shlex.quote(workdir)} && pidfile={shlex.quote(pidfile)} && {{\n{SNIPPET}\n}}"


@dataclass(frozen=True)
class ResourceUsage:
    cpu: float | None = None  # percent of all the host's CPUs
    memory: float | None = None  # percent of MemTotal not available
    disk: float | None = None  # percent of the workdir's filesystem used
    mount: str = ""
    service_cpu: float | None = None  # percent of one CPU (may pass 100 on several)
    service_rss: int | None = None  # bytes
    missing: tuple[str, ...] = field(default=())  # what the output lacked

    def service(self) -> str:
        if self.service_cpu is None and self.service_rss is None:
            return "service: not running (no live pid in its pidfile)"
        cpu = "?" if self.service_cpu is None else f"{self.service_cpu:.3g} %"
        rss = "?" if self.service_rss is None else f"{self.service_rss / 2**20:.0f} MB"
        return f"service: CPU {cpu} of one core, memory (RSS) {rss}"


def _sections(output: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("@@"):
            current = out.setdefault(line[2:].strip(), [])
        elif current is not None and line.strip():
            current.append(line.strip())
    return out


def _cpu_ticks(lines: list[str]) -> tuple[int, int, int] | None:
    """(total, idle, cpus) from /proc/stat's cpu lines; guest time is already in user."""
    head = [ln.split() for ln in lines if ln.startswith("cpu ")]
    if not head or len(head[0]) < 5:
        return None
    ticks = [int(v) for v in head[0][1:9]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    cpus = sum(1 for ln in lines if re.match(r"cpu\d+\s", ln))
    return sum(ticks), idle, max(cpus, 1)


def _proc_ticks(lines: list[str]) -> int | None:
    """utime + stime of a /proc/<pid>/stat line (the command name may hold spaces)."""
    if not lines or ")" not in lines[0]:
        return None
    rest = lines[0][lines[0].rindex(")") + 1 :].split()
    return int(rest[11]) + int(rest[12]) if len(rest) > 12 else None


def _kb(lines: list[str], key: str) -> int | None:
    for line in lines:
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def parse(output: str) -> ResourceUsage:
    """The command's output -> usage; what it lacks stays None and is named in `missing`."""
    s = _sections(output)
    first, second = _cpu_ticks(s.get("stat1", [])), _cpu_ticks(s.get("stat2", []))
    cpu = service_cpu = None
    if first and second and second[0] > first[0]:
        total = second[0] - first[0]
        cpu = 100.0 * (1 - (second[1] - first[1]) / total)
        p1, p2 = _proc_ticks(s.get("pid1", [])), _proc_ticks(s.get("pid2", []))
        if p1 is not None and p2 is not None:
            service_cpu = 100.0 * (p2 - p1) / (total / second[2])
    total_kb, avail_kb = (
        _kb(s.get("meminfo", []), "MemTotal"),
        _kb(s.get("meminfo", []), "MemAvailable"),
    )
    memory = 100.0 * (1 - avail_kb / total_kb) if total_kb and avail_kb is not None else None
    df = _DF.search(s["df"][0]) if s.get("df") else None
    disk = 100.0 * int(df.group(2)) / (int(df.group(2)) + int(df.group(3))) if df else None
    rss = _kb(s.get("status", []), "VmRSS")
    found = {"CPU": cpu, "memory": memory, "disk": disk}
    return ResourceUsage(
        cpu, memory, disk, df.group(5) if df else "", service_cpu,
        rss * 1024 if rss is not None else None,
        tuple(k for k, v in found.items() if v is None),
    )  # fmt: skip
