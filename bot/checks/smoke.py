"""Smoke tests as checks: each command, run on the smoke host, must exit 0.

The apps file's `smoke:` is a list of shell command templates; its model is `SmokeConfig` (the
list itself, so the file's shape is unchanged). Each is filled in and quoted per host by the
runner's templates before a `SmokeCheck` is made of it.

The `smoke` kind runs once, after the checks that settle, and never in a monitoring round (it
acts on the app). Given the step's `Shell`, a host's smoke tests run as one script in one
session, their output shown in the thread (`read_smoke`); without one, each runs on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ConfigDict, Field, RootModel, field_validator

from bot.checks.base import Check
from bot.checks.kinds import Shell, Site, Unreadable, Words, kind, read_each
from bot.checks.resources_check import Runs
from bot.checks.result import CheckResult, Threshold, Verdict, inconclusive
from bot.workflow.errors import HostError
from bot.workflow.messages import Block, Inline

EXIT_ZERO = Threshold(min=0, max=0)


class SmokeConfig(RootModel[list[str]]):
    """The apps file's `smoke:`: shell command templates, each run on the smoke host after a
    rollback and passed on exit 0 only. It reads as the list it holds."""

    model_config = ConfigDict(frozen=True)

    root: list[str] = Field(default_factory=list)

    @field_validator("root")
    @classmethod
    def _not_blank(cls, v: list[str]) -> list[str]:
        for i, template in enumerate(v):
            if not template.strip():  # a blank command exits 0: it would read as a pass
                raise ValueError(f"smoke[{i}] is blank: give the command to run, or remove it")
        return v

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # the tests, not fields
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __bool__(self) -> bool:
        return bool(self.root)


def exit_words(exit_status: int | None) -> str:
    """How a command ended, in words, as `bot.ports.CommandResult.status` says it."""
    if exit_status is None:
        return "no exit status: timed out or cut off"
    return f"exit {exit_status}"


def smoke_result(template: str, host: str, command: str, exit_status: int | None) -> CheckResult:
    """One smoke test's run as the checks' typed result: passed on exit 0 only."""
    name = f"smoke `{template}` on {host}"
    verdict = Verdict.PASSED if exit_status == 0 else Verdict.FAILED
    value = float(exit_status) if exit_status is not None else None
    why = "" if exit_status == 0 else exit_words(exit_status)
    return CheckResult(name, verdict, value, EXIT_ZERO, command, "smoke", reason=why,
                       host=host, status=exit_status)  # fmt: skip


@dataclass(frozen=True)
class SmokeCheck:
    """One smoke test as a check (`bot.checks.Check`), run now over the host runner."""

    runner: Runs  # `bot.ports.HostRunner`
    host: str
    template: str  # as the apps file has it, for the thread
    command: str  # filled in and quoted, in the workdir
    timeout: float | None = None
    shell: Shell | None = None  # the step's: shown in the thread, one script per host
    reads_the_past: bool = False

    @property
    def name(self) -> str:
        return f"smoke `{self.template}` on {self.host}"

    @property
    def query(self) -> str:
        return self.command

    async def measure(self, at: datetime | None = None) -> CheckResult:
        if at is not None:
            why = "a smoke test runs now only"
            return inconclusive(self.name, EXIT_ZERO, self.query, why, provider="smoke")
        try:
            ran = await self.runner.run(self.host, self.command, timeout=self.timeout)
        except HostError as exc:  # an unreachable host: not a pass
            found = inconclusive(self.name, EXIT_ZERO, self.query, str(exc), provider="smoke")
            return found
        return smoke_result(self.template, self.host, self.command, ran.exit_status)


async def read_smoke(checks: Sequence[Check], deployed_at: datetime | None) -> list[CheckResult]:
    """The smoke tests given the step's shell run as one script per host (each runs whatever
    the one before it did, as before); the others each on their own. In the checks' order."""
    out: dict[int, CheckResult] = {}
    scripts: dict[tuple[int, str], list[tuple[int, SmokeCheck]]] = {}
    for i, check in enumerate(checks):
        if isinstance(check, SmokeCheck) and check.shell is not None:
            scripts.setdefault((id(check.shell), check.host), []).append((i, check))
    for together in scripts.values():
        shell, host = together[0][1].shell, together[0][1].host
        assert shell is not None
        ran = await shell.script(host, [c.command for _, c in together])
        for (i, c), one in zip(together, ran, strict=True):
            out[i] = smoke_result(c.template, c.host, c.command, one.exit_status)
    alone = [(i, c) for i, c in enumerate(checks) if i not in out]
    for (i, _), found in zip(alone, await read_each([c for _, c in alone], None), strict=True):
        out[i] = found
    return [out[i] for i in range(len(checks))]


def template_of(r: CheckResult) -> str:
    """The smoke test as the apps file has it: `smoke `pytest -q` on web1` -> pytest -q."""
    return r.name.removeprefix("smoke `").rpartition("` on ")[0]


def _line(r: CheckResult) -> list[Block | Inline]:
    why = f": {r.reason}" if r.reason else ""
    return [f"\n{'✅' if r.passed else '❌'} `{template_of(r)}` on {r.host}{why}"]


WORDS = Words(
    title="Smoke tests",
    line=_line,
    bad=lambda r: f"smoke `{template_of(r)}` {r.reason}",
    failure=lambda r: f"smoke: `{template_of(r)}` on {r.host} {r.reason}",
    good=lambda n: f"smoke {n}/{n}",
)


@kind("smoke", order=30, read=read_smoke, settle=False, rounds=False,
      missing="no smoke tests configured (smoke:)", words=WORDS)  # fmt: skip
def smoke_checks(site: Site) -> list[Check]:
    """Each smoke test on the smoke host; one that cannot be filled in says why (not a pass)."""
    host = site.smoke_host
    out: list[Check] = []
    for template in site.app.smoke:
        try:
            cmd = site.fill(host, template, {})
        except ValueError as exc:
            why = f"`{template}` cannot be filled in: {exc}"
            out.append(Unreadable(f"smoke `{template}` on {host}", host, why, "smoke"))
            continue
        out.append(SmokeCheck(site.runner, host, template, cmd, shell=site.shell))
    return out
