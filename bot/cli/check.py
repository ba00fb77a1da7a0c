"""`python -m bot check [--connect]`: is the config sound, and can we reach everything?

Every problem in one list, each with the file, the line, the key and what to do. Without
`--connect` nothing leaves this machine; `known_hosts` is still read, and must hold an entry for
every host. With it, each failure says which of the host, the key, the known_hosts entry or the
network is at fault.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from bot.cli.check_signals import check_signals
from bot.config.apps_file import AppConfig, AppsFile, load_apps
from bot.config.settings import Settings
from bot.workflow.errors import ConfigError, HostError, Problem, StoreError, UserFacingError
from runners import templates
from runners.local import runner_for

_SAMPLE = {"ref": "v1.0.0", "version": "v1.0.0", "backup": "/tmp/b.sql", "revision": "abc123",
           "since": "2026-01-01 00:00:00"}  # fmt: skip


def check_templates(app: AppConfig) -> list[str]:
    """Every command renders with sample values (the apps file's own check names the keys)."""
    problems = []
    names = ["fetch", "install", "restart", "status", "logs", "version", "stop", "start"]
    host = app.hosts[0]
    for name in names:
        try:
            templates.build(app, host, name, **_SAMPLE)
        except UserFacingError as exc:
            problems.append(f"apps.{app.name}.deploy.commands.{name}: {exc}")
    return problems


def known_hosts_problems(app: AppConfig, lines: dict[tuple[int | str, ...], int]) -> list[Problem]:
    """`known_hosts` readable, with an entry for every host (address and port)."""
    import asyncssh

    from bot.config.apps_problems import dotted, line_of

    if app.ssh.transport != "ssh" or not app.ssh.known_hosts:
        return []
    loc: tuple[int | str, ...] = ("apps", app.name, "ssh", "known_hosts")
    path = Path(app.ssh.known_hosts)
    try:
        text = path.read_text()
    except OSError as exc:
        fix = (
            "create it with the hosts' keys (ssh-keyscan, then check the fingerprints) and make "
            "it readable by the bot"
        )
        return [
            Problem(dotted(loc), f"cannot read {path}: {exc.strerror}", fix, line_of(lines, loc))
        ]
    try:
        known = asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.Error) as exc:
        return [Problem(dotted(loc), f"{path} is not a known_hosts file: {exc}",
                        "one `host keytype key` per line, as ssh-keyscan writes",
                        line_of(lines, loc))]  # fmt: skip
    problems = []
    for i, host in enumerate(app.hosts):
        keys, cas, *_ = known.match(host.address, _ip_or_empty(host.address), host.port)
        if keys or cas:
            continue
        entry = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
        hloc: tuple[int | str, ...] = ("apps", app.name, "hosts", i, "address")
        problems.append(Problem(
            dotted(hloc), f"{path} has no entry for {entry} (host {host.name})",
            f"add it: ssh-keyscan -p {host.port} {host.address} >> {path} — then compare the "
            "fingerprint with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)",
            line_of(lines, hloc),
        ))  # fmt: skip
    return problems


def key_problems(app: AppConfig, lines: dict[tuple[int | str, ...], int]) -> list[Problem]:
    from bot.config.apps_problems import dotted, line_of

    problems = []
    for i, key in enumerate(app.ssh.client_keys if app.ssh.transport == "ssh" else []):
        loc: tuple[int | str, ...] = ("apps", app.name, "ssh", "client_keys", i)
        try:
            Path(key).read_bytes()
        except OSError as exc:
            problems.append(Problem(dotted(loc), f"cannot read the client key {key}: "
                                    f"{exc.strerror}", "fix the path or the file's permissions",
                                    line_of(lines, loc)))  # fmt: skip
    return problems


async def check_connect(
    settings: Settings, apps: AppsFile, warnings: list[str] | None = None
) -> list[str]:
    problems: list[str] = []
    for app in apps.apps.values():
        runner = runner_for(app)
        try:
            results = await asyncio.gather(
                *(runner.run(h.name, "true", timeout=15) for h in app.hosts),
                return_exceptions=True,
            )
            for host, res in zip(app.hosts, results, strict=True):
                if isinstance(res, HostError):
                    hint = f" — {res.hint}" if res.hint else ""
                    problems.append(f"{app.name}/{host.name}: {res.what}{hint}")
                elif isinstance(res, BaseException):
                    problems.append(f"{app.name}/{host.name}: {res!r}")
                elif not res.ok:
                    problems.append(f"{app.name}/{host.name}: logged in, but `true` exited "
                                    f"{res.exit_status}: {res.tail(3)}")  # fmt: skip
        finally:
            await runner.close()
    problems.extend(await check_redis(settings, warnings))
    problems.extend(await _check_slack(settings))
    return problems


async def check_redis(settings: Settings, warnings: list[str] | None = None) -> list[str]:
    """Redis answers; a warning when it would lose the open incidents on a restart."""
    from bot.store.connection import parse_url, probe, unreachable
    from bot.store.stores import open_store
    from bot.workflow.errors import StartupError

    try:
        where = parse_url(settings.redis_url).redacted()
        # The real reason (refused, wrong password, no TLS) at once, not after a minute of retries.
        await probe(settings.redis_url)
        stores = open_store(settings.redis_url)
    except StartupError as exc:  # a bad REDIS_URL, or a Redis that does not answer
        return [str(exc)]
    try:
        warning = await asyncio.wait_for(stores.persistence_warning(), 10)
        if warning and warnings is not None:
            warnings.append(f"Redis at {where}: {warning}")
    except (TimeoutError, OSError, StoreError) as exc:
        return [unreachable(settings.redis_url, exc)]
    finally:
        await stores.aclose()
    return []


async def _check_slack(settings: Settings) -> list[str]:
    if settings.slack_bot_token is None:
        return ["Slack: SLACK_BOT_TOKEN is not set — the bot token (xoxb-…) of the Slack app"]
    from bot.fronts.slack.chat import connect_problems

    return await connect_problems(settings.token(), settings.slack_api_url)


async def run_check(settings: Settings, *, connect: bool, out: TextIO = sys.stdout) -> int:
    path = str(settings.config_path)
    try:
        apps = load_apps(settings.config_path)
    except ConfigError as exc:
        _problems(out, [p.text(exc.path) for p in exc.problems])
        return 1
    lines = _key_lines(path)
    found = [
        p
        for app in apps.apps.values()
        for p in (*known_hosts_problems(app, lines), *key_problems(app, lines))
    ]
    problems = [p.text(path) for p in found]
    warnings: list[str] = []  # check_connect adds what it met on the way
    if connect and not problems:
        problems.extend(await check_connect(settings, apps, warnings))
        problems.extend(await check_signals(apps, out))  # each metric's query, once
    for name, app in apps.apps.items():
        print(f"• {name}: {app.environment}, {len(app.hosts)} host(s), {app.deploy.strategy}"
              + (", database" if app.database else ""), file=out)  # fmt: skip
    for w in warnings:
        print(f"⚠ {w}", file=out)
    if problems:
        _problems(out, problems)
        return 1
    print("✓ all well" + (" (hosts, Redis and Slack reached)" if connect else ""), file=out)
    return 0


def _key_lines(path: str) -> dict[tuple[int | str, ...], int]:
    from bot.config.apps_problems import key_lines

    try:
        return key_lines(Path(path).read_text())
    except OSError:
        return {}


def _problems(out: TextIO, problems: list[str]) -> None:
    print(f"✗ {len(problems)} problem(s):", file=out)
    for p in problems:
        print(f"  - {p}", file=out)


def _ip_or_empty(address: str) -> str:
    """known_hosts matching wants an IP address as `addr`; a host name matches by name."""
    import ipaddress

    try:
        ipaddress.ip_address(address)
    except ValueError:
        return ""
    return address
