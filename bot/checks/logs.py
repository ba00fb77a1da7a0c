"""Logs as a check: the lines matching `logs.error_pattern` among those written since a time.

Only lines written since the restart (Verify, the monitor) or the deploy (the watch) count, so
the broken version's errors do not fail the version that replaced it: lines that start with an
ISO 8601 timestamp are filtered by it, which covers a `logs` command without `{since}`, such as
`tail -n 200 app.log`.

The `logs` kind reads each deploy host's logs once (`LogsCheck`: since the host's restart when
the site knows it) or, when the caller keeps a session open on each host across its rounds
(the monitor), over that session, since its host's clock when it opened (`KeptLogsCheck`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, field_validator

from bot.checks.base import Check
from bot.checks.kinds import Kept, NotRead, Parts, Site, Spot, Unreadable, Words, kind
from bot.checks.resources_check import Ran, Runs
from bot.checks.result import CheckResult, Threshold, Verdict, inconclusive
from bot.workflow.errors import HostError
from bot.workflow.messages import CodeBlock

_STAMP = re.compile(
    r"^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?\s?(Z|[+-]\d{2}:?\d{2})?"
)


class LogsConfig(BaseModel):
    """The apps file's `logs:`: what an error line looks like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_pattern: str = r"(?i)\b(error|critical|traceback)\b"

    @field_validator("error_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return v


def line_time(line: str, utc_offset: int) -> datetime | None:
    """The timestamp a log line starts with, in UTC; a naive one is in the host's local time."""
    match = _STAMP.match(line)
    if not match:
        return None
    day, clock, frac, zone = match.groups()
    try:
        stamp = datetime.fromisoformat(f"{day}T{clock}")
    except ValueError:
        return None
    stamp = stamp.replace(microsecond=int((frac or "0")[:6].ljust(6, "0")))
    if zone in (None, ""):
        offset = timedelta(seconds=utc_offset)
    elif zone == "Z":
        offset = timedelta(0)
    else:
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (stamp - offset).replace(tzinfo=UTC)


def lines_since(lines: Sequence[str], since: datetime, utc_offset: int) -> tuple[list[str], bool]:
    """The lines written at or after `since`, and whether any line carried a timestamp.

    A line without a timestamp (a traceback's continuation) belongs to the record above it.
    Lines above the first timestamp belong to an older record: they are dropped when that first
    timestamp is already before `since`, else kept, since nothing proves they are old. With no
    timestamp at all nothing can be told apart, so every line is kept: a false alarm can be
    retried, a missed error would call a broken service recovered."""
    stamps = [line_time(line, utc_offset) for line in lines]
    first = next((s for s in stamps if s is not None), None)
    if first is None:
        return list(lines), False
    keep = first >= since
    kept: list[str] = []
    for line, stamp in zip(lines, stamps, strict=True):
        if stamp is not None:
            keep = stamp >= since
        if keep:
            kept.append(line)
    return kept, True


@dataclass
class LogScan:
    host: str
    checked: int = 0
    matches: list[str] = field(default_factory=list)
    windowed: bool = True  # False: neither `{since}` nor timestamps told old lines apart
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not self.matches


def scan(host: str, ran: Ran, since: datetime, offset: int, pattern: str,
         windowed: bool = False) -> LogScan:  # fmt: skip
    """What a logs read found: the error lines among those written since `since`. `windowed`:
    the command itself reads only since then (its `{since}`)."""
    if ran.exit_status != 0:
        status = "no exit status: timed out or cut off" if ran.exit_status is None else (
            f"exit {ran.exit_status}")  # fmt: skip
        return LogScan(host, error=f"`logs` failed ({status})")
    lines, stamped = lines_since(ran.output.splitlines(), since, offset)
    matches = [line for line in lines if re.search(pattern, line)]
    return LogScan(host, len(lines), matches, stamped or windowed)


NO_ERRORS = Threshold(max=0)


def scan_result(found: LogScan, command: str) -> CheckResult:
    """A scan as the checks' typed result: the count of error lines (max 0), the lines, or
    inconclusive with why the logs could not be read (never a pass)."""
    name = f"logs on {found.host}"
    if found.error:
        why = inconclusive(name, NO_ERRORS, command, found.error, provider="logs")
        return replace(why, host=found.host)
    verdict = Verdict.FAILED if found.matches else Verdict.PASSED
    note = "" if found.windowed else "no timestamps, no `{since}`: all lines checked"
    return CheckResult(name, verdict, float(len(found.matches)), NO_ERRORS, command, "logs",
                       "error line(s)", note=note, host=found.host,
                       lines=tuple(found.matches), checked=found.checked)  # fmt: skip


@dataclass(frozen=True)
class LogsCheck:
    """A host's logs as a check (`bot.checks.Check`): the error lines since `since`, read over
    the host runner (one command, not streamed)."""

    runner: Runs  # `bot.ports.HostRunner` (the apps file, which ports imports, imports this)
    host: str
    command: str  # the `logs` command, `{since}` filled in and quoted
    since: datetime
    offset: int  # the host's UTC offset, for its lines' local timestamps
    pattern: str  # `logs.error_pattern`
    timeout: float = 60.0
    windowed: bool = False  # the command reads only since `since` (its `{since}`)
    reads_the_past: bool = False

    @property
    def name(self) -> str:
        return f"logs on {self.host}"

    @property
    def query(self) -> str:
        return self.command

    async def measure(self, at: datetime | None = None) -> CheckResult:
        if at is not None:
            why = "logs are read since the restart only"
            return inconclusive(self.name, NO_ERRORS, self.query, why, provider="logs")
        try:
            ran = await self.runner.run(self.host, self.command, timeout=self.timeout)
        except HostError as exc:  # an unreachable host: not a pass, and the caller goes on
            return scan_result(LogScan(self.host, error=str(exc)), self.command)
        found = scan(self.host, ran, self.since, self.offset, self.pattern, self.windowed)
        return scan_result(found, self.command)


@dataclass(frozen=True)
class KeptLogsCheck:
    """A host's logs read over the session its caller keeps open across rounds (`Kept`): the
    error lines since the session's window began, at the host's clock."""

    kept: Kept
    host: str
    write: Callable[[datetime, int], str]  # the command for a window (start, UTC offset)
    shown: str  # the command as listed before the window is known
    pattern: str
    timeout: float = 60.0
    windowed: bool = False
    reads_the_past: bool = False

    @property
    def name(self) -> str:
        return f"logs on {self.host}"

    @property
    def query(self) -> str:
        return self.shown

    async def measure(self, at: datetime | None = None) -> CheckResult:
        if at is not None:
            why = "logs are read since the restart only"
            return inconclusive(self.name, NO_ERRORS, self.query, why, provider="logs")
        try:
            ran, since, offset = await self.kept.read(self.host, self.write, self.timeout)
        except NotRead as exc:  # this round's read only: the next round tries again
            return scan_result(LogScan(self.host, error=str(exc)), self.query)
        found = scan(self.host, ran, since, offset, self.pattern, self.windowed)
        return scan_result(found, self.write(since, offset))


NO_COMMAND = "no `logs` command configured (deploy.commands.logs)"
SHOWN_MATCHES = 20  # error lines shown in the thread per host


def _line(r: CheckResult) -> Parts:
    if r.value is None:
        return [f"\n❌ {r.host}: {r.reason}"]
    if r.lines:
        shown = "\n".join(line[:300] for line in r.lines[:SHOWN_MATCHES])
        more = len(r.lines) - SHOWN_MATCHES
        return [f"\n❌ {r.host}: {len(r.lines)} error line(s) since the restart",
                CodeBlock(shown), f"…and {more} more" if more > 0 else ""]  # fmt: skip
    note = f" ({r.note})" if r.note else ""
    return [f"\n✅ {r.host}: no errors in {r.checked or 0} line(s){note}"]


def _said(r: CheckResult) -> str:
    """`3 error line(s)`, or why the logs could not be read."""
    return r.reason if r.value is None else f"{int(r.value)} error line(s)"


WORDS = Words(
    title="Logs since the restart",
    line=_line,
    bad=lambda r: r.reason if r.value is None else f"{int(r.value)} error line(s) in logs",
    failure=lambda r: f"{r.name}: {_said(r)}",
    good=lambda n: "logs clean",
)


@kind("logs", order=20, settle=False, words=WORDS)
def logs_checks(site: Site) -> list[Check]:
    """Each deploy host's error lines since its restart (or `site.since`), over the caller's
    kept sessions when it has them; a host whose command cannot be written is inconclusive
    (never a pass) and says why."""
    return [logs_check(site, spot) for spot in site.deploy_hosts]


def logs_check(site: Site, spot: Spot) -> Check:
    name = f"logs on {spot.name}"
    template = site.template("logs")
    if not template:
        return Unreadable(name, spot.name, NO_COMMAND)

    def write(since: datetime, offset: int) -> str:
        return site.fill(spot.name, template, {"since": site.since_text(since, offset)})

    since = site.since_on(spot)
    try:
        cmd = write(since, spot.utc_offset)
    except ValueError as exc:
        return Unreadable(name, spot.name, str(exc))
    timeout, pattern = min(site.command_timeout, 60), site.app.logs.error_pattern
    windowed = "{since}" in template
    if site.kept is not None:
        return KeptLogsCheck(site.kept, spot.name, write, cmd, pattern, timeout, windowed)
    return LogsCheck(site.runner, spot.name, cmd, since, spot.utc_offset, pattern,
                     timeout=timeout, windowed=windowed)  # fmt: skip
