"""The CLI a newcomer meets: `rewind` (the console script) and `python -m bot`."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from bot import __version__
from bot.cli.main import parser
from bot.config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    return subprocess.run(
        [*args], env=clean | {"PYTHONPATH": str(ROOT)} | (env or {}), capture_output=True,
        text=True,
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
        assert "rewind --help" in (sub.epilog or ""), name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = action.help or ""
            assert text, f"{name} {action.dest}: no help"
            if action.option_strings:
                assert action.option_strings[0] in text, f"{name} {action.dest}: no example"
            else:
                assert ": " in text, f"{name} {action.dest}: no example"


def settings_variables() -> list[str]:
    """The environment variable of every Settings field, in order."""
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias or field.alias
        choices = getattr(alias, "choices", [alias])
        assert isinstance(choices[0], str), f"Settings.{name} reads no environment variable"
        names.append(choices[0])
    return names


def test_the_top_help_lists_every_variable_once_and_subcommands_none() -> None:
    result = run(sys.executable, "-m", "bot", "--help")
    assert result.returncode == 0
    section = result.stdout.split("environment (every variable rewind reads):\n", 1)[1]
    listed = re.findall(r"^  ([A-Z][A-Z0-9_]+)  ", section, flags=re.M)
    assert listed == settings_variables()
    for name in listed:
        assert len(re.findall(rf"^  {name} ", result.stdout, flags=re.M)) == 1, name
    assert "(see the README)" not in section  # every variable has its line
    assert "LOG_LEVEL" in listed and "REWIND_SWEEP" in listed  # once left out
    subparsers = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    for sub_name, sub in subparsers.choices.items():
        text = sub.format_help()
        assert "every variable is listed once, in `rewind --help`" in text, sub_name
        listing = [n for n in listed if re.search(rf"^  {n} ", text, flags=re.M)]
        assert not listing, f"{sub_name} --help repeats {listing}"


def readme_variables() -> list[str]:
    """The variables of the README's table, one entry per mention in a row's first cell."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| variable | meaning | default |", 1)[1].split("\n\n", 1)[0]
    found: list[str] = []
    for row in table.splitlines()[2:]:
        found += re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    return found


def test_the_readme_table_has_every_variable_once() -> None:
    rows = readme_variables()
    assert len(rows) == len(set(rows)), [n for n in rows if rows.count(n) > 1]
    assert set(settings_variables()) <= set(rows), set(settings_variables()) - set(rows)
    # Rows beyond the settings: the contract's Datadog keys (no Datadog provider reads them yet).
    assert set(rows) - set(settings_variables()) == {"DD_API_KEY", "DD_APP_KEY"}


def test_no_command_prints_a_warning() -> None:
    """A deprecation inside a library (asyncssh with cryptography's DSA) is nothing a user of
    `rewind` can act on: no command prints one."""
    config = ROOT / "config" / "apps.example.yaml"
    for args in (["--help"], ["check"], ["demo", "--help"]):
        result = run(sys.executable, "-m", "bot", *args, env={"REWIND_CONFIG": str(config)})
        assert "Warning" not in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        if args == ["check"]:  # it read the file and checked it (its keys are not on this machine)
            assert "myapp: production, 2 host(s)" in result.stdout, result.stdout
