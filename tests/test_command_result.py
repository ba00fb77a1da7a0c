"""`CommandResult.check`: the one way a failed command becomes the error a person reads."""

from __future__ import annotations

import pytest

from bot.ports import FAILED_HINT, CommandResult
from bot.workflow.errors import HostError

OUTPUT = "\n".join(f"line {i}" for i in range(1, 21)) + "\n"


def test_a_command_that_succeeded_is_passed_on() -> None:
    ok = CommandResult("web1", "true", 0, "fine", 0.1)
    assert ok.check("`restart`") is ok


def test_a_failed_command_says_what_where_how_its_last_lines_and_what_to_do() -> None:
    failed = CommandResult("web2", "./run.sh restart", 3, OUTPUT, 0.1)
    with pytest.raises(HostError) as raised:
        failed.check("`restart`", hint="Fix the unit, then Retry.")
    err = raised.value
    assert err.what == "`restart` failed (exit 3)" and err.host == "web2"
    assert err.hint == "Fix the unit, then Retry."
    assert err.detail.splitlines() == [f"line {i}" for i in range(6, 21)]  # the last 15
    assert str(err) == "`restart` failed (exit 3) on web2: Fix the unit, then Retry."
    with pytest.raises(HostError) as default:
        failed.check("mkdir")
    assert default.value.hint == FAILED_HINT


def test_a_command_cut_off_says_so_not_exit_none() -> None:
    cut = CommandResult("web1", "sleep 99", None, "", 60.0)
    with pytest.raises(
        HostError, match=r"`backup` failed \(no exit status: timed out or cut off\)"
    ):
        cut.check("`backup`")
