"""`/rollback …`: parsing and the help text, shared by every front (`dispatch` runs them)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.workflow.errors import UserFacingError
from bot.workflow.group import COMMAND_WORDS
from bot.workflow.input_checks import check_words
from bot.workflow.messages import Emphasis, bullets, message, para
from bot.workflow.version import Version

SUBCOMMANDS = set(COMMAND_WORDS) - {"plan"}
# A second word is taken as the version when it looks like one; otherwise it starts the reason.
# v1, v1.4.2, 1.4, a commit sha, release/1.4 — or anything with shell characters, so that it
# is refused as a version instead of slipping into the reason. "500s on checkout" is a reason.
_LOOKS_LIKE_VERSION = re.compile(
    r"^(v\d|\d+(\.\d+)+|[0-9a-f]{7,40}$|[^\s]*/[^\s]*$)|[;&|$`<>(){}\\'\"]", re.I
)

# `/rollback GROUP app=VERSION …`: a member of the group and the version it goes back to.
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)=(\S+)$")


@dataclass(frozen=True)
class Command:
    kind: str  # start | plan | status | list | cancel | unfreeze | help
    app: str = ""
    version: Version | None = None
    reason: str = ""
    target: str = ""  # APP or INCIDENT for status / cancel / unfreeze
    major: bool = False  # a major outage: the report comes with a postmortem template
    # `/rollback GROUP app=VERSION …`: the versions picked for members of a group.
    pins: tuple[tuple[str, Version], ...] = ()


def parse(text: str) -> Command:
    check_words(text)
    words = text.strip().split()
    if not words or words[0].lower() == "help":
        return Command("help")
    head = words[0].lower()
    if head == "release":
        if len(words) != 3:
            raise UserFacingError("Usage: `/rollback release APP VERSION`")
        return Command(head, app=words[1], version=Version.parse(words[2]), target=words[1])
    if head in SUBCOMMANDS:
        arg = words[1] if len(words) > 1 else ""
        if head in {"cancel", "unfreeze"} and not arg:
            what = "INCIDENT" if head == "cancel" else "APP"
            raise UserFacingError(f"Usage: `/rollback {head} {what}`")
        return Command(head, target=arg)
    if head == "plan":
        return _start(words[1:], "plan", "Usage: `/rollback plan APP [VERSION]`")
    return _start(words, "start", "Usage: `/rollback APP [VERSION] reason… [--major]`")


def _start(words: list[str], kind: str, usage: str) -> Command:
    major = "--major" in words
    words = [w for w in words if w != "--major"]
    if not words:
        raise UserFacingError(usage)
    app, rest = words[0], words[1:]
    pins: list[tuple[str, Version]] = []
    while rest and (pin := _PIN.match(rest[0])):
        if any(name == pin.group(1) for name, _ in pins):
            raise UserFacingError(f"`{pin.group(1)}` is given two versions: pick one.")
        pins.append((pin.group(1), Version.parse(pin.group(2))))
        rest = rest[1:]
    version: Version | None = None
    if not pins and rest and _LOOKS_LIKE_VERSION.search(rest[0]):
        version, rest = Version.parse(rest[0]), rest[1:]
    return Command(
        kind, app=app, version=version, reason=" ".join(rest), major=major, pins=tuple(pins)
    )


HELP = message(
    Emphasis("Rewind"),
    " rolls back a failed deployment and recovers the service, step by step from the runbook, "
    "in one thread.",
    bullets(
        [
            "`/rollback APP VERSION reason…` — start: e.g. `/rollback myapp v1.4.2 checkout "
            "returns 500`",
            "`/rollback APP reason…` — the same; Rewind proposes the version before the deployed "
            "one",
            "`/rollback GROUP [APP=VERSION …] reason…` — every app of a group (the apps file's "
            "`groups:`) in one incident, in the group's order",
            "add `--major` for a major outage: the report comes with a postmortem template",
            para(
                "`/rollback plan APP|GROUP [VERSION]` — the plan of the rollback (every command, "
                "the SQL), changing nothing, posted as a file with a ",
                Emphasis("Run this plan"),
                " button",
            ),
            "`/rollback status [APP|INCIDENT]` — where an incident stands",
            "`/rollback list` — open and recent incidents",
            "`/rollback cancel INCIDENT` — stop an incident (says what was and was not rolled "
            "back)",
            "`/rollback unfreeze APP` — lift the deploy freeze after a rollback (approvers)",
            "`/rollback release APP VERSION` — let a version rolled back from be deployed again "
            "(approvers)",
            "`/rollback help` — this text",
        ]
    ),
    para(
        "Buttons in the thread: ",
        Emphasis("Roll back"),
        " / ",
        Emphasis("Fix forward"),
        ", ",
        Emphasis("Approve"),
        ", ",
        Emphasis("Retry"),
        ", ",
        Emphasis("Abort"),
        ". In production, someone other than the requester must approve.",
    ),
)
