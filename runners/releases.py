"""Releases kept warm (`deploy.releases: N`), as Capistrano and Deployer keep them:

    <workdir>/releases/<version>/   one checkout per release, installed once; its marker file
                                    (`MARKER`, the commit it holds) is written after install
    <workdir>/current -> releases/<version>   what runs; the app's commands run in it

A rollback to a kept release switches the symlink and restarts. Whether the release is kept is
read on the host at run time (its marker, and that it names the expected commit): a release
deleted by hand, or left half-made by a failed install, takes the full path again.

Every value is validated (`release_name`) and shell-quoted; the switch is atomic (`ln -sfn` to
a temporary name, then `mv -T` over `current`).
"""

from __future__ import annotations

import shlex

from bot.workflow.errors import UserFacingError
from bot.workflow.version import is_version

MARKER = ".rewind-release"
_NEW = ".new"  # the release being copied; hidden, so no glob below ever takes it for a release


def release_name(version: str) -> str:
    """The directory under `releases/` for `version`: its text, `/` written as `+` (a tag such
    as `release/1.2` stays one directory). Raises UserFacingError for anything else."""
    name = version.replace("/", "+")
    if not is_version(version) or name.startswith("."):
        raise UserFacingError(
            f"`{version[:60]}` cannot name a release directory: refusing to put it in a command"
        )
    return name


def release_dir(base: str, version: str) -> str:
    return f"{base.rstrip('/')}/releases/{release_name(version)}"


def kept(base: str, version: str) -> str:
    """Read-only: the commit the kept release of `version` holds ('' when none is complete)."""
    marker = shlex.quote(f"{release_dir(base, version)}/{MARKER}")
    return f"cat {marker} 2>/dev/null || true"


def prepare(base: str, version: str) -> str:
    """A new release directory, copied from `current` (the host's own files, such as symlinks
    into `shared/`, come along), without a marker until it is installed."""
    b, name = shlex.quote(base), shlex.quote(release_name(version))
    missing = shlex.quote(
        f"no {base.rstrip('/')}/current: set the host up with releases/ and a current symlink"
    )
    return (
        f"cd {b} && {{ test -d current/ || {{ echo {missing} >&2; false; }}; }}"
        f" && rm -rf -- releases/{_NEW} && mkdir -p releases"
        f" && cp -a current/. releases/{_NEW} && rm -f -- releases/{_NEW}/{MARKER}"
        f" && rm -rf -- releases/{name} && mv -T releases/{_NEW} releases/{name}"
    )


def mark(base: str, version: str, head: str | None) -> str:
    """Written after install: from now on the release counts as kept. `head` names the commit
    (None: the version's text is written)."""
    d = shlex.quote(release_dir(base, version))
    what = head or f"printf '%s\\n' {shlex.quote(version)}"
    return f"cd {d} && {what} > {MARKER}.tmp && mv -f {MARKER}.tmp {MARKER}"


def switch(base: str, version: str) -> str:
    """`current` -> the release, atomically; the marker touched: the most recent release used."""
    b, name = shlex.quote(base), shlex.quote(release_name(version))
    return (
        f"cd {b} && touch releases/{name}/{MARKER}"
        f" && ln -sfn releases/{name} .current.tmp && mv -T .current.tmp current"
    )


def prune(base: str, keep: int) -> str:
    """Delete the complete releases beyond the `keep` most recently used; never `current`'s."""
    releases = shlex.quote(f"{base.rstrip('/')}/releases")
    return (
        f'cd {releases} && live=$(basename "$(readlink ../current)")'
        f" && ls -1t -- */{MARKER} 2>/dev/null | sed 's,/{MARKER}$,,' | tail -n +{int(keep) + 1}"
        ' | while IFS= read -r d; do [ "$d" = "$live" ] || { rm -rf -- "$d" && echo "pruned $d"; }'
        "; done"
    )


def listing(base: str) -> str:
    """Read-only: `<name> <commit>` for each complete release kept on the host."""
    releases = shlex.quote(f"{base.rstrip('/')}/releases")
    return (
        f"cd {releases} 2>/dev/null && for m in */{MARKER}; do"
        f' [ -f "$m" ] && printf \'%s %s\\n\' "${{m%/{MARKER}}}" "$(head -n 1 "$m")"; done; true'
    )


def parse_listing(output: str) -> dict[str, str]:
    """`listing`'s output as {release name: commit}."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        name, _, commit = line.strip().partition(" ")
        if name:
            found[name] = commit.strip()
    return found


def holds(commit: str, *accepted: str) -> bool:
    """The kept release's marker names one of the `accepted` commits: the rollback commit, or
    the target's own (a revert hotfix holds exactly the target's files, which the code step
    makes sure of). With none known, any complete release of the version counts."""
    commit = commit.strip().lower()
    known = {a.strip().lower() for a in accepted if a.strip()}
    return bool(commit) and (not known or commit in known)
