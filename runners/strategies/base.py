"""What every deploy strategy provides, and the shared behaviour of git-checkout strategies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.config.apps_file import AppConfig, HostConfig


class DeployStrategy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def defaults(self) -> Mapping[str, str]:
        """Command templates (fetch, install, restart, stop, start, status, logs, version…)."""
        ...

    @property
    def dependency_file(self) -> str | None:
        """The file in the checkout whose change means `install` must run again (None: always)."""
        ...

    @property
    def head_command(self) -> str | None:
        """A read-only command whose output names the exact revision a host runs (None: the
        `version` command's output is the truth)."""
        ...

    def since(self, at: datetime, utc_offset: int) -> str:
        """`{since}` for the logs command, from a UTC time and the host's UTC offset (seconds)."""
        ...

    def deploy_hosts(self, app: AppConfig) -> list[HostConfig]:
        """The hosts the deploy commands run on."""
        ...

    def off_target(self, reported: str, head: str, expected_sha: str, target: str) -> str:
        """'' when the host runs the rollback target; else what it runs instead, in words.

        `reported`: the `version` command's last line; `head`: `head_command`'s output ('' when
        there is none); `expected_sha`: the rollback commit ('' when unknown)."""
        ...


def rfc3339_utc(at: datetime, utc_offset: int) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def host_local(at: datetime, utc_offset: int) -> str:
    """`YYYY-MM-DD HH:MM:SS` on the host's clock (what `journalctl --since` reads everywhere)."""
    local = at.astimezone(UTC) + timedelta(seconds=utc_offset)
    return local.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class GitCheckout:
    """A strategy where every host keeps a git checkout of the app in `workdir`."""

    name: str
    defaults: Mapping[str, str]
    dependency_file: str | None = None
    local_since: bool = False  # the logs command reads host-local time, not RFC 3339 UTC
    head_command: str | None = field(default="git rev-parse HEAD")

    def since(self, at: datetime, utc_offset: int) -> str:
        return host_local(at, utc_offset) if self.local_since else rfc3339_utc(at, utc_offset)

    def deploy_hosts(self, app: AppConfig) -> list[HostConfig]:
        return list(app.hosts)

    def off_target(self, reported: str, head: str, expected_sha: str, target: str) -> str:
        if not expected_sha:
            if reported == target:
                return ""
            return f"`version` reports {reported or 'nothing'}, not {target}"
        # The commit decides: a 'revert' hotfix describes as e.g. v1.5.0-1-gabc, not the tag.
        if head.lower() == expected_sha.lower():
            return ""
        return (
            f"`version` reports {reported or 'nothing'}: the checkout is at "
            f"{head[:12] or 'an unknown commit'}, not {expected_sha[:12]} ({target})"
        )


FETCH = "git fetch --tags --force origin {ref} && git checkout --force FETCH_HEAD"
VERSION = "git describe --tags --always"
