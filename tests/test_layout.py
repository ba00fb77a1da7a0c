"""The layout holds: each package imports only what its docstring allows, and only the Slack
adapter speaks Slack.

Slack's mrkdwn (`<@U…>`, `<#C…>`, `<!subteam…>`, `<url|label>`, `:emoji:`, `*bold*`) belongs to
the Slack adapter (`bot/fronts/slack/`); everywhere else a person is a `Mention`, emphasis an
`Emphasis`, a status a `Mark` (`bot.workflow.messages`), so that the terminal, a report or a new
front never has to un-Slack a sentence.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The engine reaches SSH, git, Slack and Redis only through `bot.ports`.
FORBIDDEN = {"runners", "slack_sdk", "slack_bolt", "asyncssh", "redis", "saq", "git"}
PURE = [
    "bot/incidents/groups.py",
    "bot/incidents/host_runners.py",
    "bot/incidents/service.py",
    "bot/incidents/step_runner.py",
    "bot/workflow/input_checks.py",
]
SLACK_MARKUP = re.compile(
    r"<[@#!][A-Za-z{]"  # a mention, a channel, a user group
    r"|<(?:https?://|\{)[^<>|]*\|"  # a link with a label
    r"|(?<![\w/:]):[a-z][a-z0-9_+-]*:(?![\w/])"  # an emoji shortcode
    r"|(?<![\w*`])\*[A-Za-z{][^*\n`]*\*(?![\w*])"  # *bold*
)
# The apps file holds Slack mentions by contract (`mention:`); these read or check them.
SPEAKS_SLACK_BY_CONTRACT = {
    "bot/config/apps_file.py",
    "bot/fronts/terminal/people.py",
    "bot/cli/demo.py",
}
# bot/watch is a service with its own Redis store, not part of the incident core.
CORE = ("bot/workflow", "bot/steps", "bot/plan")
ADAPTERS = ("bot.fronts", "bot.store", "bot.app", "slack_bolt", "slack_sdk", "asyncssh", "redis")
ADAPTERS += ("aiohttp.web",)


def _sources(*folders: str) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        path = ROOT / folder
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal, f-strings' literal parts included (docstrings left out)."""
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_nothing_outside_the_slack_adapter_writes_slack_markup() -> None:
    found = []
    for path in _sources("bot", "runners"):
        rel = path.relative_to(ROOT).as_posix()
        if rel in SPEAKS_SLACK_BY_CONTRACT or rel.startswith("bot/fronts/slack/"):
            continue
        for line, text in _strings(ast.parse(path.read_text())):
            if m := SLACK_MARKUP.search(text):
                found.append(f"{rel}:{line}: {m.group(0)!r} in {text[:60]!r}")
    assert found == []


def test_the_detector_finds_each_kind_of_markup() -> None:
    for sample in ("<@U0CAROL> chose", "in <#C0INC>", "<!subteam^S1>", "<https://x|thread>",
                   ":warning: careful", "*Assessment*", "f: <{link}|thread>"):  # fmt: skip
        assert SLACK_MARKUP.search(sample), sample
    for sample in ("http://127.0.0.1:8000/healthz", "10:30:00 UTC", "`*.sql`", "a * b * c"):
        assert not SLACK_MARKUP.search(sample), sample


def test_the_core_imports_no_adapter() -> None:
    found = []
    for path in _sources(
        *CORE, "bot/incidents", "bot/workflow/messages.py", "bot/workflow/render_text.py"
    ):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.startswith(ADAPTERS):
                    found.append(f"{path.relative_to(ROOT)}: imports {name}")
    assert found == []


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


def test_git_is_reached_only_through_runners() -> None:
    """GitPython is an adapter's business: the report's commit goes through the `Repos` port."""
    found = [
        path.relative_to(ROOT).as_posix()
        for path in _sources("bot")
        if "git" in imported(path) and not path.is_relative_to(ROOT / "bot" / "sample")
    ]
    assert found == []


# What each package may import of Rewind's (as its docstring says). A package is the folder under
# `bot/` (`bot/fronts/slack` and `bot/fronts/terminal` count on their own); `runners` is one.
BASE = {"workflow"}
ALLOWED: dict[str, set[str]] = {
    "workflow": set(),
    "config": BASE | {"checks"},  # the `metrics:` and `resources:` models are the checks'
    "telemetry": BASE | {"bot"},  # bot.__version__
    "ports": BASE | {"config"},
    "views": BASE | {"config", "ports"},
    "runners": BASE | {"config", "ports", "telemetry"},
    # The watch's store keeps the watch's own records (bot.watch.deploys, bot.watch.model).
    "store": BASE | {"config", "ports", "telemetry", "watch"},
    "checks": BASE | {"ports", "telemetry"},  # the apps file imports it, not the reverse
    "steps": BASE | {"config", "ports", "views", "telemetry", "runners", "checks"},
    "incidents": BASE | {"config", "ports", "views", "telemetry", "steps"},
    "plan": BASE | {"config", "ports", "steps", "incidents", "runners", "checks"},
    "watch": BASE | {"config", "ports", "telemetry", "steps", "incidents", "runners", "checks"},
    "fronts": BASE | {"config", "ports", "views", "telemetry", "incidents", "plan", "watch"},
}
ALLOWED["fronts.slack"] = ALLOWED["fronts"] | {"fronts"}
ALLOWED["fronts.terminal"] = ALLOWED["fronts"] | {"fronts"}
EVERYTHING = set(ALLOWED) | {"store", "runners", "sample", "bot"}
ALLOWED["app"] = EVERYTHING
ALLOWED["cli"] = EVERYTHING | {"app"}


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "runners":
        return "runners"
    if parts[0] != "bot":
        return None
    if len(parts) == 1 or parts[1].startswith("__"):
        return "bot"
    if parts[1] == "fronts" and len(parts) > 2 and parts[2] in {"slack", "terminal"}:
        return f"fronts.{parts[2]}"
    return parts[1]


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_each_package_imports_only_what_it_may() -> None:
    found = []
    for path in _sources("bot", "runners"):
        rel = path.relative_to(ROOT)
        here = _package(".".join(rel.with_suffix("").parts))
        if here in (None, "bot", "sample"):
            continue
        allowed = ALLOWED[here] | {here}
        for name in _imports(path):
            there = _package(name)
            if there is not None and there != "bot" and there not in allowed:
                found.append(f"{rel.as_posix()} -> {there}")
    assert sorted(set(found)) == sorted(DEBT)


# Imports that the house issue is still taking out, each to be struck here once it is gone.
DEBT: set[str] = set()


def test_no_class_is_over_300_lines() -> None:
    found = {
        f"{path.relative_to(ROOT).as_posix()}: {node.name}"
        for path in _sources("bot", "runners")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and (node.end_lineno or 0) - node.lineno + 1 > 300
    }
    assert found == set()


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Circles still to break, each to be struck here once it is.
CIRCLES: set[str] = set()


def test_no_module_imports_itself_back_through_others() -> None:
    """No import circle among Rewind's modules, lazy imports and `TYPE_CHECKING` ones included."""
    paths = {_module(p): p for p in _sources("bot", "runners")}
    graph = {m: {n for n in _imports(p) if n in paths and n != m} for m, p in paths.items()}
    circles = []
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            here = todo.pop()
            if here == start:
                circles.append(start)
                break
            if here not in seen:
                seen.add(here)
                todo += graph[here]
    assert set(circles) == CIRCLES


def test_only_the_store_speaks_redis_or_saq() -> None:
    """Every Redis key, script and client is bot/store's: the rest gets typed ports and
    `StoreUnavailable`, never a redis client or a redis exception."""
    found = [
        f"{path.relative_to(ROOT).as_posix()} imports {name}"
        for path in _sources("bot", "runners")
        if not path.relative_to(ROOT).as_posix().startswith("bot/store/")
        for name in sorted(imported(path) & {"redis", "saq"})
    ]
    assert found == []


def test_the_detector_sees_a_lazy_redis_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from redis.exceptions import RedisError\n    import saq\n")
    assert imported(module) & {"redis", "saq"} == {"redis", "saq"}


def test_only_bot_store_keys_names_a_redis_key() -> None:
    """The `rewind:` prefix is written once, in bot/store/keys.py."""
    found = []
    for path in _sources("bot", "runners"):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "bot/store/keys.py":
            continue
        for line, text in _strings(ast.parse(path.read_text())):
            if re.match(r"rewind:(?! )", text) or "redis.call(" in text:
                found.append(f"{rel}:{line}: {text[:60]!r}")
    assert found == []


SLACK_ADAPTER = "bot/fronts/slack/"


def slack_imports(path: Path) -> list[str]:
    """Every import of slack_sdk or slack_bolt in a module, at any depth (lazy and
    TYPE_CHECKING imports count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else []
        )
        found += [f"{node.lineno}: {n}" for n in names if n.split(".")[0] in SLACK_LIBRARIES]
    return found


SLACK_LIBRARIES = {"slack_sdk", "slack_bolt"}


def test_only_the_slack_adapter_imports_slack_sdk_or_slack_bolt() -> None:
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{line}"
        for path in _sources("bot", "runners")
        if not path.relative_to(ROOT).as_posix().startswith(SLACK_ADAPTER)
        for line in slack_imports(path)
    ]
    assert found == []


def test_the_slack_import_detector_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from slack_sdk.web.async_client import AsyncWebClient\n"
        "def f():\n    import slack_bolt.async_app\n    import json\n"
    )
    assert slack_imports(module) == ["3: slack_sdk.web.async_client", "5: slack_bolt.async_app"]
    assert slack_imports(ROOT / "bot/fronts/slack/app.py")  # the adapter itself does import them
