"""`{app}`, `{host}` and `{version}` in a metric's URL and query: validated, then quoted.

A query has braces of its own (PromQL `{code=~"5.."}`, Datadog `{service:web}`), so only a brace
pair around a bare name is a placeholder; `{{name}}` stands for the literal `{name}` (a Datadog
bare tag). Any other name is an error when the apps file is read. A value is checked against
what it may look like (the apps file's own rules for app and host names, the version rule of
the rollback command) before it goes in: a value with a quote, a brace or a backslash could
change a query's meaning, so it is refused, never escaped into something else. In a URL each
value is also percent-quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

PLACEHOLDERS = frozenset({"app", "host", "version"})
_FIELD = re.compile(r"\{\{([A-Za-z_]\w*)\}\}|\{([A-Za-z_]\w*)\}")
# The same rules as the apps file's names (bot/config/apps_file.py `_ID`) and the rollback command's
# versions (bot/workflow/version.py `SHAPE`); tests/test_checks_core.py holds them equal.
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
VERSION_RE = re.compile(r"^(?![-/])[A-Za-z0-9._/-]{1,100}$")
_RULES = {"app": NAME_RE, "host": NAME_RE, "version": VERSION_RE}


def fields(template: str) -> set[str]:
    """The placeholders `template` uses (`{{name}}` is a literal, not one)."""
    return {m.group(2) for m in _FIELD.finditer(template) if m.group(2)}


def check_template(template: str) -> str:
    """`template`, or ValueError naming the unknown placeholders (for the config models)."""
    unknown = fields(template) - PLACEHOLDERS
    if unknown:
        names = ", ".join(f"{{{n}}}" for n in sorted(unknown))
        raise ValueError(
            f"unknown placeholder {names}: use {{app}}, {{host}} or {{version}} "
            f"(write {{{{name}}}} for a literal {{name}})"
        )
    return template


def check_url(url: str) -> str:
    """An http(s) URL with a host, placeholders allowed (they are filled per host)."""
    check_template(url)
    probe = _FIELD.sub("x", url)
    try:
        parts = urlsplit(probe)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"{url[:80]!r} is not a URL: {exc}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{url[:80]!r} is not an http(s) URL with a host (e.g. http://prom:9090)")
    return url


@dataclass(frozen=True)
class Placeholders:
    """The values a metric is read for: the app, the host (per-host metrics) and the version."""

    app: str
    host: str | None = None
    version: str | None = None

    def values(self) -> dict[str, str]:
        """Every value given, each checked against its rule (ValueError names the bad one)."""
        given = {"app": self.app, "host": self.host, "version": self.version}
        out: dict[str, str] = {}
        for key, value in given.items():
            if value is None:
                continue
            if not _RULES[key].fullmatch(value):  # `$` alone lets a last "\n" through
                raise ValueError(
                    f"{value[:60]!r} is not a valid {key}: refusing to put it in a query or URL"
                )
            out[key] = value
        return out


def _render(template: str, values: Mapping[str, str], quote_value: Callable[[str], str]) -> str:
    missing = fields(template) - set(values)
    if missing:
        raise ValueError(
            f"{template[:80]!r} uses {sorted(missing)}, which have no value here "
            "({host} is filled only for a per-host reading, {version} only for a known version)"
        )

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "{" + m.group(1) + "}"
        return quote_value(values[m.group(2)])

    return _FIELD.sub(one, check_template(template))


def render_url(template: str, given: Placeholders) -> str:
    """The URL with each placeholder's value checked and percent-quoted."""
    return _render(template, given.values(), lambda v: quote(v, safe=""))


def render_query(template: str, given: Placeholders) -> str:
    """The query with each placeholder's value checked (only names, digits, `._/-` pass)."""
    return _render(template, given.values(), lambda v: v)
