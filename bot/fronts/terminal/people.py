"""People and channels by name on the terminal, never as Slack markup.

`<@U0CAROL>` -> `@carol`, `<!subteam^S0ONCALL>` -> `@oncall`, `<#C0INC|incidents>` ->
`#incidents`, `:white_check_mark:` -> ✅. Names come from the apps file's `people` map and, when
Slack answers, from it (`Chat.names`); an id nobody named stays an id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_USER = re.compile(r"<@([A-Za-z0-9_.:-]+)(?:\|([^<>]+))?>")
_GROUP = re.compile(r"<!subteam\^([A-Za-z0-9]+)(?:\|@?([^<>]+))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^<>]*)?>")
_CHANNEL = re.compile(r"<#([A-Za-z0-9]+)(?:\|([^<>]*))?>")
_EMOJI = re.compile(r":(?=[a-z0-9_+-]*[a-z])([a-z0-9_+-]+):")

EMOJI = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✔",
    "x": "❌",
    "warning": "⚠️",
    "snowflake": "❄️",
    "recycle": "♻️",
    "rotating_light": "🚨",
    "hourglass_flowing_sand": "⏳",
    "hourglass": "⌛",
    "rewind": "⏪",
    "stop_sign": "🛑",
    "octagonal_sign": "🛑",
    "arrow_right": "➡️",
    "repeat": "🔁",
    "mag": "🔍",
    "package": "📦",
    "paperclip": "📎",
    "memo": "📝",
    "large_green_circle": "🟢",
    "red_circle": "🔴",
    "white_circle": "⚪",
    "fast_forward": "⏩",
    "no_entry": "⛔",
    "information_source": "ℹ️",
    "tada": "🎉",
}


class People:
    """Ids -> names. `plain(text)` is the one place the terminal turns Slack markup into words."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self.names: dict[str, str] = dict(names or {})

    @classmethod
    def from_apps_file(cls, people: Mapping[str, str]) -> People:
        """The apps file maps name -> id; the terminal needs id -> name."""
        return cls({uid: name for name, uid in people.items()})

    def name(self, entity: str) -> str:
        """`U0CAROL` -> `@carol` (or `@U0CAROL` when nobody named it)."""
        if entity.startswith("terminal:"):
            return f"@{entity.removeprefix('terminal:')} (terminal)"
        return f"@{self.names.get(entity, entity)}"

    def bare(self, entity: str) -> str:
        """`U0CAROL` -> `carol` (no `@`): `render_text.Names`, which adds its own."""
        if entity.startswith("terminal:"):
            return f"{entity.removeprefix('terminal:')} (terminal)"
        return self.names.get(entity, entity)

    def plain(self, text: str) -> str:
        text = _USER.sub(lambda m: self.name(m.group(1)), text)
        text = _GROUP.sub(lambda m: f"@{m.group(2)}" if m.group(2) else self.name(m.group(1)), text)
        text = _SPECIAL.sub(lambda m: f"@{m.group(1)}", text)
        text = _CHANNEL.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
        return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), ""), text)

    def learn(self, names: Mapping[str, str]) -> None:
        """Names the chat knows (`Chat.names`); the apps file's own names stay first."""
        for uid, name in names.items():
            self.names.setdefault(uid, name)
