"""A scratch copy of the deployed commit, made on a host before a redeploy moves its checkout:
where a release group's shared database is downgraded after its owner's own redeploy when the
owner keeps no releases (`alembic downgrade` needs the newer revision files, which the redeploy
removes from the checkout).

    <checkout>/.git/rewind-downgrade-<incident>/    without `deploy.releases`: inside the git
                                                    directory, which no checkout, clean or
                                                    build context of the app's own touches
    <workdir>/releases/.rewind-downgrade-<incident>/  with `deploy.releases: 1`: hidden beside the
                                                    releases, so no release glob takes it

It holds the commit's tracked files (`git archive`: the commit is already in the checkout, no
fetch), a symlink to each of the checkout's own top-level entries that the commit does not track
(the host's files: a database URL, a virtualenv; as a kept release links `shared/`), and,
written last, the marker a kept release has (`releases.MARKER`: the commit it holds), so a copy
left half-made by a failure counts as missing. Every value is validated and quoted.
"""

from __future__ import annotations

import re
import shlex

from bot.workflow.errors import UserFacingError
from runners.releases import MARKER
from runners.templates import check_value

_SHA = re.compile(r"^[0-9a-f]{7,64}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PREFIX = "rewind-downgrade-"


def commit(sha: str) -> str:
    """`sha` as a full or abbreviated commit id; raises UserFacingError for anything else."""
    value = sha.strip().lower()
    if not _SHA.match(value):
        raise UserFacingError(f"`{sha[:60]}` is not a commit id: refusing to put it in a command")
    return value


def directory(workdir: str, incident: str, releases: bool) -> str:
    """Where the scratch copy of `incident` goes (`workdir`: the configured one, not `current`)."""
    if not _ID.match(incident):
        raise UserFacingError(
            f"`{incident[:60]}` cannot name a scratch directory: refusing to put it in a command"
        )
    base = check_value("workdir", workdir.rstrip("/"))
    return f"{base}/releases/.{PREFIX}{incident}" if releases else f"{base}/.git/{PREFIX}{incident}"


def make(checkout: str, sha: str, where: str) -> str:
    """Copy commit `sha`'s files from the git checkout `checkout` to `where`, marker last: built
    aside (`.new`) and moved into place, so a second run replaces the first whole."""
    c, s = shlex.quote(check_value("workdir", checkout)), shlex.quote(commit(sha))
    d, new, tar = (shlex.quote(check_value("workdir", where) + x) for x in ("", ".new", ".tar"))
    return (
        f"cd {c} && git cat-file -e {shlex.quote(commit(sha) + '^{commit}')}"
        f" && rm -rf -- {new} {tar} && mkdir -p -- {new}"
        f" && git archive --format=tar -o {tar} {s} && tar -x -f {tar} -C {new} && rm -f -- {tar}"
        f" && {_link_own(c, new)}"
        f" && printf '%s\\n' {s} > {new}/{MARKER} && rm -rf -- {d} && mv -T {new} {d}"
    )


def _link_own(checkout: str, new: str) -> str:
    """Each top-level entry of the checkout the copy lacks (not `.git`, not a release's
    marker: the copy's own is written after), linked into the copy."""
    return (
        '( for f in .[!.]* ..?* *; do if { [ -e "$f" ] || [ -L "$f" ]; } && [ "$f" != .git ]'
        f' && [ "$f" != {MARKER} ] && ! [ -e {new}/"$f" ] && ! [ -L {new}/"$f" ]; then'
        f' ln -s {checkout}/"$f" {new}/"$f" || exit 1; fi; done )'
    )


def marker(where: str) -> str:
    """Read-only: the commit the scratch copy holds ('' when there is no complete copy)."""
    return f"cat {shlex.quote(f'{where}/{MARKER}')} 2>/dev/null || true"


def remove(where: str) -> str:
    """The scratch copy gone, and whatever a failed `make` left beside it."""
    check_value("workdir", where)
    d, new, tar = (shlex.quote(where + x) for x in ("", ".new", ".tar"))
    return f"rm -rf -- {d} {new} {tar}"
