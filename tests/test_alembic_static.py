"""Revision files are read as syntax, never run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sample.build import migration_file
from bot.workflow.facts import MigrationFact
from runners.alembic_static import (
    Revision,
    UnknownRevision,
    heads,
    parse_files,
    parse_revision,
    to_undo,
)

SAMPLE = ["a1b2c3d4e5f6", "b2c3d4e5f6a1", "c3d4e5f6a1b2", "d4e5f6a1b2c3", "e5f6a1b2c3d4"]


def rev_file(rev: str, down: str, downgrade: str = "    op.drop_table('t')", doc: str = "") -> str:
    return (
        f'"""{doc or "change " + rev}\n\nRevision ID: {rev}\n"""\n'
        "from alembic import op\n"
        f"revision = {rev!r}\n"
        f"down_revision = {down}\n\n"
        "def upgrade():\n    op.create_table('t')\n\n"
        f"def downgrade():\n{downgrade}\n"
    )


def chain(*pairs: tuple[str, str]) -> dict[str, Revision]:
    return parse_files({f"{r}.py": rev_file(r, d) for r, d in pairs})


def test_sample_migrations_parse() -> None:
    files = {migration_file(r).name: migration_file(r).read_text() for r in SAMPLE}
    revs = parse_files(files)
    assert list(revs) == SAMPLE
    coupon = revs["c3d4e5f6a1b2"]
    assert coupon.down_revisions == ("b2c3d4e5f6a1",)
    assert coupon.message == "add column orders.coupon"
    assert revs["a1b2c3d4e5f6"].down_revision is None
    assert {r for r, rev in revs.items() if rev.irreversible} == {"e5f6a1b2c3d4"}
    assert heads(revs) == ["e5f6a1b2c3d4"]
    undo = to_undo(revs, "e5f6a1b2c3d4", "b2c3d4e5f6a1")
    assert [r.revision for r in undo] == ["e5f6a1b2c3d4", "d4e5f6a1b2c3", "c3d4e5f6a1b2"]
    assert undo[-1].fact() == MigrationFact(
        revision="c3d4e5f6a1b2",
        down_revision="b2c3d4e5f6a1",
        message="add column orders.coupon",
        irreversible=False,
    )


@pytest.mark.parametrize(
    ("body", "irreversible"),
    [
        ("    op.drop_table('t')", False),
        ("    pass", True),
        ('    """Nothing to do."""', True),
        ('    """Doc."""\n    pass', True),
        ("    ...", True),
        ("    raise NotImplementedError('data is gone')", True),
        ("    op.drop_table('t')\n    raise RuntimeError('no')", True),
        # A guard for one dialect does not make it irreversible everywhere.
        (
            "    if op.get_bind().dialect.name == 'sqlite':\n        raise NotImplementedError\n"
            "    op.drop_table('t')",
            False,
        ),
    ],
)
def test_irreversible_downgrades(body: str, irreversible: bool) -> None:
    rev = parse_revision(rev_file("abc123", "None", body))
    assert rev is not None
    assert rev.irreversible is irreversible


def test_missing_downgrade_is_irreversible() -> None:
    rev = parse_revision('"""x"""\nrevision = "abc"\ndown_revision = None\n')
    assert rev is not None and rev.irreversible


def test_annotated_merge_revision() -> None:
    source = (
        '"""merge heads"""\n'
        'revision: str = "m1"\n'
        'down_revision: tuple[str, str] = ("b1", "c1")\n'
        "def downgrade() -> None:\n    pass\n"
    )
    rev = parse_revision(source)
    assert rev is not None
    assert (rev.revision, rev.down_revisions, rev.message) == ("m1", ("b1", "c1"), "merge heads")
    assert rev.down_revision == "b1,c1"


def test_not_a_revision_file() -> None:
    assert parse_revision("import os\n") is None
    assert parse_revision("def (:\n") is None
    assert parse_revision("revision = compute()\n") is None
    assert parse_files({"README.md": "revision = 'x'", "__init__.py": ""}) == {}


def test_files_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').write('x')\n" + rev_file("abc", "None")
    assert parse_revision(source) is not None
    assert not marker.exists()


def test_to_undo_with_branches_and_merge() -> None:
    #   a <- b <- c <- m
    #         \- d <-/
    revs = chain(("a", "None"), ("b", "'a'"), ("c", "'b'"), ("d", "'b'"), ("m", "('c', 'd')"))
    assert heads(revs) == ["m"]
    undo = [r.revision for r in to_undo(revs, "m", "b")]
    assert undo[0] == "m" and sorted(undo[1:]) == ["c", "d"]
    assert [r.revision for r in to_undo(revs, "c", None)] == ["c", "b", "a"]
    assert to_undo(revs, "b", "b") == []
    assert to_undo(revs, "a", "c") == []  # the database is behind the target: nothing to undo
    assert to_undo(revs, None, "c") == []  # empty database


def test_unknown_revision() -> None:
    revs = chain(("a", "None"), ("b", "'a'"))
    with pytest.raises(UnknownRevision) as err:
        to_undo(revs, "zz99", "a")
    assert err.value.revision == "zz99"
    assert heads(chain(("a", "None"), ("b", "'a'"), ("c", "'a'"))) == ["b", "c"]
