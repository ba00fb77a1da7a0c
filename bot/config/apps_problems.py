"""Every problem of an apps file in one list: the key, its line, what is wrong, what to do.

Pydantic finds the structural ones (all of them, not just the first); this module adds the
line of each key, names a close key for a typo ("did you mean `incident_channel`?"), and checks
the `{placeholders}` of every command template and health URL, which need the whole app.
"""

from __future__ import annotations

import difflib
import string
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bot.workflow.errors import Problem

Loc = tuple[int | str, ...]

# What every command template may use; a host's `vars` add their own names.
COMMAND_PLACEHOLDERS = frozenset(
    {
        "ref",
        "version",
        "workdir",
        "service",
        "backup",
        "revision",
        "app",
        "host",
        "since",
        "image",
        "namespace",
    }
)
URL_PLACEHOLDERS = frozenset({"app", "host", "address"})
_DB_TEMPLATES = ("alembic", "backup", "restore", "verify", "backups")
EXAMPLE = "config/apps.example.yaml"


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(top level)"


# ---- lines --------------------------------------------------------------------------------------


def key_lines(text: str) -> dict[Loc, int]:
    """Every key path of the YAML document -> its 1-based line."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    lines: dict[Loc, int] = {}

    def walk(node: yaml.Node, loc: Loc) -> None:
        lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*loc, str(key.value))
                lines[here] = key.start_mark.line + 1
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*loc, i))

    if root is not None:
        walk(root, ())
    return lines


def duplicate_keys(text: str) -> list[Problem]:
    """YAML keeps the last of two equal keys without a word, so a second `environment:` lower
    in the app would quietly win: each repeat is an error."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return []
    problems: list[Problem] = []

    def walk(node: yaml.Node, loc: Loc) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                name, line = str(key.value), key.start_mark.line + 1
                if name in seen and name != "<<":
                    problems.append(Problem(dotted((*loc, name)), f"`{name}` is given twice "
                                            f"(first on line {seen[name]})", "keep one: YAML "
                                            "would silently use the last", line))  # fmt: skip
                seen.setdefault(name, line)
                walk(value, (*loc, name))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*loc, i))

    if root is not None:
        walk(root, ())
    return problems


def line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """The key's own line, else its closest parent's (a missing key: where it belongs)."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


# ---- YAML syntax -------------------------------------------------------------------------------

_CLOSERS = {"flow sequence": ("[", "]"), "flow mapping": ("{", "}")}
_MISALIGNED = (
    "this line does not line up with the block above",
    "indent it like the keys (or `- ` items) it belongs with, with spaces only",
)
# The parser's problem (a substring) -> what is wrong and what to do, in plain words.
_SAID = {
    "mapping values are not allowed": (
        "a `: ` where a value was expected",
        "indent this key like its siblings, or put quotes around a value that holds `: `",
    ),
    "'\\t'": ("a tab in the indentation", "indent with spaces only"),
    "but found ']'": ("a `]` that closes nothing", "remove it, or open its `[`"),
    "but found '}'": ("a `}` that closes nothing", "remove it, or open its `{`"),
    "expected <block end>": _MISALIGNED,
    "did not find expected": _MISALIGNED,
    "that cannot start any token": (
        "a value cannot start with this character",
        'put the value in quotes (e.g. "@alice")',
    ),
}


def syntax_problem(exc: yaml.YAMLError, text: str) -> Problem:
    """A parser error as a compiler gives it: where the fix goes, the line shown, and a hint.

    An unclosed bracket is found only where the parser gives up, often lines later; the place
    to fix is where the bracket was opened (the error's context mark)."""
    problem = str(getattr(exc, "problem", "") or exc)
    context = str(getattr(exc, "context", "") or "")
    at, opened = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    pair = next((v for k, v in _CLOSERS.items() if k in context), None)
    what, hint = next(
        (said for key, said in _SAID.items() if key in problem),
        (problem, "check this line and the indentation above it"),
    )
    if pair and opened is not None and at is not None and "expected ','" in problem:
        what = f"unclosed `{pair[0]}` opened here"
        hint = (
            f"close it with `{pair[1]}` (the parser gave up at line {at.line + 1}, column "
            f"{at.column + 1}); or write it in block style, one item per line"
        )
        at = opened
    elif opened is not None and "quoted scalar" in context:
        what, hint, at = "unclosed quote opened here", "close the quote", opened
    elif opened is not None and "simple key" in context:
        what, at = "a key without `:`", opened
        hint = "write `key: value`; a value that runs on to the next line needs quotes"
    if at is None:
        return Problem("YAML syntax", what, hint)
    return Problem("YAML syntax", what, hint + _shown(text, at.line, at.column),
                   at.line + 1, at.column + 1)  # fmt: skip


def _shown(text: str, line: int, column: int) -> str:
    """The offending line with a caret under the column, as compilers show it."""
    rows = text.splitlines()
    if line >= len(rows):
        return ""
    number = str(line + 1)
    return f"\n      {number} | {rows[line]}\n      {' ' * len(number)} | {' ' * column}^"


# ---- the models' keys, for "did you mean" -------------------------------------------------------


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict, tuple):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def fields_at(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model accepts at `loc` (the parent of a key)."""
    model: type[BaseModel] | None = root
    mapped = False  # inside a dict[str, Model]: the next part is a name, not a field
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        if mapped:
            mapped = False
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        mapped = typing.get_origin(annotation) is dict
        model = _model_in(annotation)
    if model is None or mapped:
        return []
    return [f.alias or name for name, f in model.model_fields.items() if name not in {"path"}]


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""


# ---- pydantic's errors, all of them -------------------------------------------------------------


def from_validation(
    exc: ValidationError, lines: Mapping[Loc, int], root: type[BaseModel]
) -> list[Problem]:
    errors = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        errors.append((loc, err["type"], str(err["msg"]).removeprefix("Value error, ")))
    unknown = {loc for loc, kind, _ in errors if kind == "extra_forbidden"}
    problems: list[Problem] = []
    explained: set[Loc] = set()  # required keys whose typo'd spelling is reported instead
    for loc in sorted(unknown, key=lambda lc: line_of(lines, lc) or 0):
        parent, word = loc[:-1], str(loc[-1])
        known = fields_at(root, parent)
        hint = did_you_mean(word, known)
        if hint:
            guess = hint.split("`")[1]
            explained.add((*parent, guess))
        fix = hint or ("remove it; known keys here: " + ", ".join(known) if known else "remove it")
        problems.append(Problem(dotted(loc), f"unknown key `{word}`", fix, line_of(lines, loc)))
    for loc, kind, msg in errors:
        if kind == "extra_forbidden" or loc in explained:
            continue
        if kind == "missing":
            fix = f"add it (every key is described in {EXAMPLE})"
            problems.append(Problem(dotted(loc), "required key is missing", fix,
                                    line_of(lines, loc)))  # fmt: skip
        else:
            problems.append(Problem(dotted(loc), msg, "", line_of(lines, loc)))
    return sorted(problems, key=lambda p: (p.line or 0, p.key))


# ---- placeholders -------------------------------------------------------------------------------


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def _host_vars(app: Mapping[str, Any]) -> frozenset[str]:
    """Names every host defines in `vars` (a name only some hosts have fails on the others)."""
    hosts = [h for h in app.get("hosts") or [] if isinstance(h, Mapping)]
    sets = [set((h.get("vars") or {}).keys()) for h in hosts if isinstance(h.get("vars"), Mapping)]
    if not hosts or len(sets) < len(hosts):
        return frozenset()
    return frozenset(set.intersection(*sets))


def _templates(app: Mapping[str, Any]) -> Iterator[tuple[Loc, str, frozenset[str]]]:
    commands = COMMAND_PLACEHOLDERS | _host_vars(app)
    urls = URL_PLACEHOLDERS | _host_vars(app)
    deploy = app.get("deploy")
    if isinstance(deploy, Mapping) and isinstance(deploy.get("commands"), Mapping):
        for name, tpl in deploy["commands"].items():
            yield ("deploy", "commands", str(name)), tpl, commands
    database = app.get("database")
    if isinstance(database, Mapping):
        for name in _DB_TEMPLATES:
            if name in database:
                yield ("database", name), database[name], commands
    for i, tpl in enumerate(app.get("smoke") or []):
        yield ("smoke", i), tpl, commands
    for i, check in enumerate(app.get("health") or []):
        if isinstance(check, Mapping) and "url" in check:
            yield ("health", i, "url"), check["url"], urls


def placeholder_problems(data: Any, lines: Mapping[Loc, int]) -> list[Problem]:
    problems: list[Problem] = []
    apps = data.get("apps") if isinstance(data, Mapping) else None
    if not isinstance(apps, Mapping):
        return problems
    for name, app in apps.items():
        if not isinstance(app, Mapping):
            continue
        for sub, tpl, known in _templates(app):
            loc: Loc = ("apps", str(name), *sub)
            if not isinstance(tpl, str):
                continue
            try:
                used = _fields(tpl)
            except ValueError as exc:
                problems.append(Problem(dotted(loc), f"bad braces in template: {exc}",
                                        "write a literal brace as {{ or }}",
                                        line_of(lines, loc)))  # fmt: skip
                continue
            for field in used:
                if field in known:
                    continue
                what = f"unknown placeholder {{{field}}}" if field else "empty placeholder {}"
                close = difflib.get_close_matches(field, sorted(known), n=1, cutoff=0.6)
                hint = f"did you mean {{{close[0]}}}?" if close else ""
                fix = (
                    (f"{hint} " if hint else "")
                    + "known: "
                    + ", ".join(f"{{{k}}}" for k in sorted(known))
                )
                problems.append(Problem(dotted(loc), what, fix, line_of(lines, loc)))
    return problems


# ---- metrics ------------------------------------------------------------------------------------


def metric_problems(data: Any, lines: Mapping[Loc, int]) -> list[Problem]:
    """What the `metrics:` models cannot see one entry at a time (two of one name), also when
    other keys are wrong: each entry that is valid on its own is compared."""
    from pydantic import ValidationError

    from bot.checks import metrics_problems, parse_metrics

    problems: list[Problem] = []
    apps = data.get("apps") if isinstance(data, Mapping) else None
    for name, app in (apps or {}).items() if isinstance(apps, Mapping) else ():
        entries = app.get("metrics") if isinstance(app, Mapping) else None
        valid = []  # (index in the file, the model)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            try:
                valid.append((i, parse_metrics([entry])[0]))
            except ValidationError:
                continue  # pydantic reports it
        for said in metrics_problems([model for _, model in valid]):
            where, _, what = said.partition(": ")
            index = valid[int(where.removeprefix("metrics[").removesuffix("]"))][0]
            loc: Loc = ("apps", str(name), "metrics", index)
            problems.append(Problem(dotted(loc), what, "", line_of(lines, (*loc, "name"))))
    return problems
