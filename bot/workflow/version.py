"""A version a person or a deploy names (tag, commit, branch), parsed once where it comes in.

A `/rollback` text, the terminal's arguments and the deploy API parse the words they are given
into a `Version`; the layers after them take a `Version` and need not check it again. It goes
into git and shell commands, so anything that could be read as an option or hold a shell
character is refused up front. In a pydantic model it is stored as its text: the JSON is the
same as a plain string's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from bot.workflow.errors import NotAVersion

# Letters, digits and `._/-`, at most 100 characters; not starting with `-` (git would read an
# option) nor `/` (a path, never a ref).
SHAPE = re.compile(r"^(?![-/])[A-Za-z0-9._/-]{1,100}$")


def is_version(text: str) -> bool:
    """`text` has the shape of a version (no lookup: it may still name nothing)."""
    return SHAPE.match(text) is not None


@dataclass(frozen=True)
class Version:
    text: str

    def __post_init__(self) -> None:
        if not is_version(self.text):
            raise NotAVersion(
                f"`{self.text[:100]}` is not a version: use a tag or commit "
                "(letters, digits, `.`, `_`, `/`, `-`; at most 100 characters)."
            )

    @classmethod
    def parse(cls, text: str) -> Version:
        """Raises `NotAVersion`, which says what a version may look like."""
        return cls(text)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Read from a string (or a Version), written as the string.
        return core_schema.no_info_plain_validator_function(
            _coerce,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def _coerce(value: object) -> Version:
    if isinstance(value, Version):
        return value
    if isinstance(value, str):
        return Version(value)
    raise ValueError("a version is a string")
