"""A version is parsed once, where it comes in (`/rollback`'s text, the terminal's arguments),
into a `Version`: a text that could become an option or a shell command is refused there, and a
`Version` in a stored model reads and writes as the plain text it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from bot.fronts.command import parse
from bot.workflow.errors import NotAVersion, UserFacingError
from bot.workflow.version import Version

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ["v1;reboot", "$(id)", "v1 2", "-x", "--upload-pack=evil", "/etc/passwd", "a" * 101, ""]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_text_that_cannot_be_a_version_is_refused_saying_what_may(text: str) -> None:
    with pytest.raises(NotAVersion) as refused:
        Version.parse(text)
    assert isinstance(refused.value, UserFacingError)  # every front shows it as a refusal
    assert "is not a version: use a tag or commit" in str(refused.value)


@pytest.mark.parametrize("text", ["v1.4.2", "1.4", "release/1.4", "0123abcd", "v1.5.0-1-gabc"])
def test_versions_parse_and_read_back_as_typed(text: str) -> None:
    assert str(Version.parse(text)) == text
    assert Version.parse(text) == Version(text)


def test_the_rollback_text_is_parsed_into_a_version_once() -> None:
    cmd = parse("myapp v1.4.2 checkout returns 500")
    assert cmd.version == Version("v1.4.2") and cmd.reason == "checkout returns 500"
    assert parse("release myapp v1.5.0").version == Version("v1.5.0")
    assert parse("myapp checkout returns 500").version is None
    with pytest.raises(NotAVersion, match=r"`v1\.4\.2;reboot` is not a version"):
        parse("myapp v1.4.2;reboot broken")


class _Stored(BaseModel):
    version: Version | None = None


def test_in_a_stored_model_a_version_is_its_text() -> None:
    stored = _Stored(version=Version("v1.4.2"))
    assert stored.model_dump_json() == '{"version":"v1.4.2"}'
    assert _Stored.model_validate_json('{"version":"v1.4.2"}').version == Version("v1.4.2")
    with pytest.raises(ValidationError, match="is not a version"):
        _Stored.model_validate_json('{"version":"v1;reboot"}')


def test_the_terminal_refuses_a_bad_version_before_anything_starts(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REWIND_CONFIG": str(ROOT / "config" / "apps.example.yaml"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "rollback", "myapp", "v1;reboot", "--reason", "checkout 500"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr  # a refusal before anything starts, as the others
    assert "`v1;reboot` is not a version" in result.stdout
    assert "Traceback" not in result.stderr
