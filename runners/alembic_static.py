"""Alembic revision files read as text, never imported.

The bot must not run the app's code in its own process, so `revision`, `down_revision` and the
shape of `downgrade()` are taken from the syntax tree of each file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.workflow.facts import MigrationFact


class UnknownRevision(ValueError):
    """A revision id that none of the parsed files defines."""

    def __init__(self, revision: str) -> None:
        self.revision = revision
        super().__init__(f"unknown alembic revision {revision!r}")


@dataclass(frozen=True)
class Revision:
    revision: str
    down_revisions: tuple[str, ...]
    message: str
    irreversible: bool
    path: str = ""

    @property
    def down_revision(self) -> str | None:
        return ",".join(self.down_revisions) or None

    def fact(self) -> MigrationFact:
        return MigrationFact(
            revision=self.revision,
            down_revision=self.down_revision,
            message=self.message,
            irreversible=self.irreversible,
        )


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _assignments(tree: ast.Module) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = _literal(stmt.value)
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            values[stmt.target.id] = _literal(stmt.value)
    return values


def _is_noop(stmt: ast.stmt) -> bool:
    # `pass`, `...` and a docstring (any bare constant) do nothing.
    return isinstance(stmt, ast.Pass) or (
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
    )


def _irreversible(tree: ast.Module) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == "downgrade":
            # A raise at the top of the body fires on every run, whatever comes before it;
            # a raise inside an `if` may be a dialect guard, so it does not count.
            return all(_is_noop(s) for s in stmt.body) or any(
                isinstance(s, ast.Raise) for s in stmt.body
            )
    return True  # no downgrade() at all: alembic cannot undo it either


def _down(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if v)
    return ()


def parse_revision(source: str, path: str = "") -> Revision | None:
    """The revision a file defines, or None when it is not a revision file."""
    try:
        tree = ast.parse(source, filename=path or "<revision>")
    except (SyntaxError, ValueError):
        return None
    values = _assignments(tree)
    revision = values.get("revision")
    if not isinstance(revision, str) or not revision:
        return None
    doc = ast.get_docstring(tree) or ""
    message = next((line.strip() for line in doc.splitlines() if line.strip()), "")
    return Revision(
        revision=revision,
        down_revisions=_down(values.get("down_revision")),
        message=message,
        irreversible=_irreversible(tree),
        path=path,
    )


def parse_files(files: Mapping[str, str]) -> dict[str, Revision]:
    """Revisions by id from `{path: source}`; files that are not revisions are left out."""
    revs: dict[str, Revision] = {}
    for path in sorted(files):
        if not path.endswith(".py"):
            continue
        rev = parse_revision(files[path], path)
        if rev is not None:
            revs[rev.revision] = rev
    return revs


def heads(revs: Mapping[str, Revision]) -> list[str]:
    """Revisions that no other revision builds on, sorted."""
    parents = {d for rev in revs.values() for d in rev.down_revisions}
    return sorted(r for r in revs if r not in parents)


def _ancestry(revs: Mapping[str, Revision], start: Iterable[str]) -> list[str]:
    """`start` and everything below it, children before parents (newest first)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(rev_id: str) -> None:
        if rev_id in seen:
            return
        if rev_id not in revs:
            raise UnknownRevision(rev_id)
        seen.add(rev_id)
        for parent in revs[rev_id].down_revisions:
            visit(parent)
        order.append(rev_id)

    for rev_id in start:
        visit(rev_id)
    return order[::-1]


def to_undo(
    revs: Mapping[str, Revision], current: str | None, target: str | None
) -> list[Revision]:
    """What `alembic downgrade target` removes from a database at `current`, newest first.

    `None` stands for an empty database (alembic's `base`). A database already at or below the
    target has nothing to undo.
    """
    if current is None:
        return []
    below_target = set(_ancestry(revs, [target])) if target else set()
    return [revs[r] for r in _ancestry(revs, [current]) if r not in below_target]
