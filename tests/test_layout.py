"""The engine's modules stay pure: they reach SSH, git, Slack and Redis only through bot.ports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"runners", "handlers", "slack_sdk", "slack_bolt", "asyncssh", "redis", "git"}
PURE = ["bot/engine.py", "bot/incidents.py", "bot/step_runner.py", "bot/input_checks.py"]


def imported(path: Path) -> set[str]:
    """The top-level packages a module imports, at any depth (lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", PURE)
def test_the_engine_imports_no_adapter(module: str) -> None:
    assert imported(ROOT / module) & FORBIDDEN == set(), f"{module} imports an adapter"
