"""A step's commands on one host, declared once as data: the run sends them as one script
(`ScriptCommand`s) and the plan (`/rollback plan`) shows them (`Planned`), from the same
declaration, so what the plan shows is what the run sends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bot.ports import CommandResult, ScriptCommand
from bot.steps.context import Planned


@dataclass(frozen=True)
class Line:
    """One command of a host's script, its text rendered, validated and quoted."""

    name: str  # what the run calls it: its decisions and its results go by this name
    command: str
    label: str = ""  # what the plan calls it ('': `name`)
    changes: bool = True  # False: it only reads
    note: str = ""  # for the plan: when or why it runs
    stream: bool = True  # its lines go to the thread as they come
    check: bool = True  # a non-zero exit stops the script here
    timeout: float | None = None  # None: the script's default
    deferred: bool = False  # its text is written when its turn comes (see `ScriptCommand`)

    def sent(self) -> ScriptCommand:
        """What the run sends."""
        return ScriptCommand(
            self.command,
            stream=self.stream,
            check=self.check,
            timeout=self.timeout,
            deferred=self.deferred,
        )

    def planned(self) -> Planned:
        """What the plan shows."""
        return Planned(self.label or self.name, self.command, changes=self.changes, note=self.note)


def read(
    name: str,
    command: str,
    *,
    label: str = "",
    note: str = "",
    timeout: float | None = None,
    deferred: bool = False,
) -> Line:
    """A read whose output the step parses and judges itself: not streamed, not checked."""
    return Line(
        name,
        command,
        label=label,
        note=note,
        changes=False,
        stream=False,
        check=False,
        timeout=timeout,
        deferred=deferred,
    )


@dataclass(frozen=True)
class HostScript:
    """The commands a step runs on one host, in the order it runs them."""

    lines: tuple[Line, ...]

    @classmethod
    def of(cls, *lines: Line | None) -> HostScript:
        """The script of `lines`; None stands for a command the app does not configure."""
        return cls(tuple(line for line in lines if line is not None))

    def __iter__(self) -> Iterator[Line]:
        return iter(self.lines)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    @property
    def names(self) -> list[str]:
        return [line.name for line in self.lines]

    def sent(self) -> list[ScriptCommand]:
        return [line.sent() for line in self.lines]

    def planned(self) -> list[Planned]:
        return [line.planned() for line in self.lines]

    def result(self, results: Sequence[CommandResult | None], name: str) -> CommandResult | None:
        """The result of command `name` (None: not run, or not in this script)."""
        return results[self.names.index(name)] if name in self else None
