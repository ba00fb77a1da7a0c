"""requirements.lock agrees with pyproject.toml: one set of versions for tests, CI and users.

The lock (exact versions with hashes, from `uv pip compile`) is what the test command and CI
install; pyproject.toml keeps ranges, bounded at the next major, for people who install the
package. If someone edits one without the other, this fails and says which package and how.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
REFRESH = (
    "uv pip compile pyproject.toml --extra test --generate-hashes --universal "
    "--python-version 3.11 -o requirements.lock"
)
UPPER = {"<", "<=", "==", "===", "~="}


def declared(pyproject: str) -> list[Requirement]:
    """The package's dependencies and its `test` extra (what the lock is compiled from)."""
    project = tomllib.loads(pyproject)["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    return [Requirement(line) for line in lines]


def pinned(lock: str) -> dict[str, list[Version]]:
    """Every `name==version` of the lock (a universal lock may pin one name once per marker)."""
    pins: dict[str, list[Version]] = {}
    for line in lock.splitlines():
        if not line.strip() or line[0] in "# \t":
            continue  # comments, hashes and "via" lines
        req = Requirement(line.rstrip(" \\"))
        spec = list(req.specifier)
        if len(spec) != 1 or spec[0].operator != "==":
            raise ValueError(f"requirements.lock: not an exact pin: {line!r}")
        pins.setdefault(canonicalize_name(req.name), []).append(Version(spec[0].version))
    return pins


def problems(pyproject: str, lock: str) -> list[str]:
    """What disagrees, one plain sentence each; empty when the two agree."""
    found: list[str] = []
    pins = pinned(lock)
    for req in declared(pyproject):
        name = canonicalize_name(req.name)
        if not any(s.operator in UPPER for s in req.specifier):
            found.append(f"pyproject.toml: {req} has no upper bound (add <NEXT_MAJOR)")
        if name not in pins:
            found.append(f"requirements.lock pins no {req.name} (pyproject.toml: {req})")
        for version in pins.get(name, []):
            if not req.specifier.contains(version, prereleases=True):
                found.append(f"requirements.lock pins {req.name}=={version}, outside {req}")
    if REFRESH not in lock:
        found.append(f"requirements.lock was not made by: {REFRESH}")
    return found


def advice(found: Iterable[str]) -> str:
    return "\n".join([*found, f"refresh the lock with: {REFRESH}"])


def test_the_lock_agrees_with_pyproject() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    lock = (ROOT / "requirements.lock").read_text()
    found = problems(pyproject, lock)
    assert not found, advice(found)
    assert len(pinned(lock)) > len(declared(pyproject))  # the dependencies' own are pinned too


def test_the_readme_names_the_command_that_refreshes_the_lock() -> None:
    readme = (ROOT / "README.md").read_text()
    tests = readme.split("\n## Tests\n", 1)[1].split("\n## ", 1)[0]
    assert REFRESH in " ".join(tests.split())


def test_a_disagreement_is_found() -> None:
    """The check itself, on doctored copies: each kind of disagreement is named."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    lock = (ROOT / "requirements.lock").read_text()
    redis_pin = next(line for line in lock.splitlines() if line.startswith("redis=="))

    outside = lock.replace(redis_pin, "redis==9.0.0 \\")
    assert problems(pyproject, outside) == [
        "requirements.lock pins redis==9.0.0, outside redis<9,>=5.0"
    ]

    below = pyproject.replace('"redis>=5.0,<9"', '"redis>=8.3,<9"')
    assert problems(below, lock) == [
        f"requirements.lock pins redis=={redis_pin.split('==')[1].split()[0]}, "
        "outside redis<9,>=8.3"
    ]

    missing = pyproject.replace('"rich>=13,<16",', '"rich>=13,<16",\n    "tenacity>=8,<10",')
    assert problems(missing, lock) == [
        "requirements.lock pins no tenacity (pyproject.toml: tenacity<10,>=8)"
    ]

    unbounded = pyproject.replace('"saq>=0.22,<1"', '"saq>=0.22"')
    assert problems(unbounded, lock) == [
        "pyproject.toml: saq>=0.22 has no upper bound (add <NEXT_MAJOR)"
    ]

    by_hand = lock.replace(REFRESH, "pip freeze")
    assert problems(pyproject, by_hand) == [f"requirements.lock was not made by: {REFRESH}"]
