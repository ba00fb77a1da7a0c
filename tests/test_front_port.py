"""Slack and the terminal are two implementations of one front port (`bot.fronts.port.Front`),
as errbot's backends are: the same methods, and each renders a command's `Reply` its own way —
mentions in Slack, names at a terminal."""

from __future__ import annotations

import inspect
import io
import re

import pytest

from bot.fronts.dispatch import Released, Reply, StatusOf, Unfrozen
from bot.fronts.port import Front
from bot.fronts.slack.notifier import SlackNotifier
from bot.fronts.slack.slack_api import make_client
from bot.fronts.terminal.notifier import TerminalNotifier
from bot.fronts.terminal.people import People
from bot.ports import Notifier
from tests.fakes import make_incident

MARKUP = re.compile(r"<[@#!]|:[a-z_]+:(?!\d)|\*\w")


def _port_methods() -> list[str]:
    names = {*vars(Notifier), *vars(Front)}
    return sorted(n for n in names if not n.startswith("_") and callable(getattr(Front, n)))


def _params(fn: object) -> list[str]:
    """The parameters a caller of the port passes: an implementation may add keyword-only ones
    with a default (Slack's `resolve_gate(..., ts=)`), nothing else."""
    params = inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    return [p.name for p in params if not (p.kind is p.KEYWORD_ONLY and p.default is not p.empty)]


@pytest.mark.parametrize("front", [SlackNotifier, TerminalNotifier])
def test_each_front_offers_every_method_of_the_port(front: type) -> None:
    methods = _port_methods()
    assert {"ask", "render", "person", "say", "upload", "update_parent"} <= set(methods)
    for name in methods:
        mine = getattr(front, name, None)
        assert callable(mine), f"{front.__name__} has no {name}"
        assert _params(mine) == _params(getattr(Front, name)), f"{front.__name__}.{name}"
        port_async = inspect.iscoroutinefunction(getattr(Front, name))
        assert inspect.iscoroutinefunction(mine) == port_async, f"{front.__name__}.{name}"


def _fronts() -> tuple[SlackNotifier, TerminalNotifier]:
    slack = SlackNotifier(make_client("xoxb-test", "http://127.0.0.1:9/"), None)  # type: ignore[arg-type]
    people = People.from_apps_file({"carol": "U0CAROL", "alice": "U0ALICE"})
    return slack, TerminalNotifier(io.StringIO(), people=people)


REPLIES: list[Reply] = [
    Unfrozen("myapp", "U0CAROL", was_frozen=True),
    Released("myapp", "v1.5.0", "U0ALICE", "ab12"),
    StatusOf(make_incident()),
]


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: type(r).__name__)
def test_slack_mentions_people_and_the_terminal_names_them(reply: Reply) -> None:
    slack, terminal = _fronts()
    in_slack, at_terminal = slack.render(reply), terminal.render(reply)
    who = "carol" if isinstance(reply, Unfrozen | StatusOf) else "alice"
    uid = f"U0{who.upper()}"
    assert f"<@{uid}>" in in_slack
    assert f"@{who}" in at_terminal and uid not in at_terminal
    assert not MARKUP.search(at_terminal), at_terminal
    assert slack.person(uid) == f"<@{uid}>" and terminal.person(uid) == f"@{who}"
