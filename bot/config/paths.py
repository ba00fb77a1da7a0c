"""Paths from the settings and the apps file, made absolute once, at start-up.

git, the report's commit and the hosts' commands run with other working directories, where a
relative path would mean somewhere else (a clone made in `var/repos/var/repos/…`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# `host:path` and `user@host:path` (scp-like) are remote; so is anything with a scheme.
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[^/]*:")


def absolute(path: str | Path) -> Path:
    """`path` from the directory Rewind was started in, `~` expanded, symlinks kept."""
    return Path(os.path.abspath(Path(path).expanduser()))


def repo_location(url: str) -> str:
    """A git URL as is; a local repository path made absolute."""
    if _REMOTE.match(url):
        return url
    return str(absolute(url))
