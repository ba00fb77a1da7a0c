"""The CLI a newcomer meets: `rewind` (the console script) and `python -m bot`."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from bot import __version__
from bot.cli.main import parser

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    return subprocess.run(
        [*args], env=env | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_rewind_is_a_console_script_for_python_m_bot() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"rewind": "bot.cli.main:main"}
    installed = shutil.which("rewind")
    if os.environ.get("CI"):  # scripts/test.sh installs the package first
        assert installed
    if installed:
        version = run(installed, "--version")
        assert version.returncode == 0 and version.stdout.strip() == f"rewind {__version__}"


def test_no_subcommand_shows_the_help_with_the_environment() -> None:
    result = run(sys.executable, "-m", "bot")
    assert result.returncode == 2
    for command in ("serve", "worker", "rollback", "resume", "status", "list", "demo", "check"):
        assert command in result.stdout
    for variable in ("SLACK_BOT_TOKEN", "REDIS_URL", "REWIND_CONFIG", "PORT", "LOG_FORMAT"):
        assert variable in result.stdout
    assert "rewind demo --yes" in result.stdout  # an example to start with


def test_every_flag_has_help_with_an_example() -> None:
    top = parser()
    subparsers = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    assert subparsers.choices
    for name, sub in subparsers.choices.items():
        assert "example:" in (sub.description or ""), name
        assert "REDIS_URL" in (sub.epilog or ""), name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = action.help or ""
            assert text, f"{name} {action.dest}: no help"
            if action.option_strings:
                assert action.option_strings[0] in text, f"{name} {action.dest}: no example"
            else:
                assert ": " in text, f"{name} {action.dest}: no example"
