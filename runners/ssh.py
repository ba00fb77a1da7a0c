"""Run commands on the app's hosts over SSH (asyncssh), streaming output line by line.

One connection per host, opened on first use and reused for the whole incident, a session
(channel) per command or script. A connection found lost is opened again by the next command.
Host keys are always checked against the app's `known_hosts`; there is no switch to turn that off.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Sequence
from typing import cast

import asyncssh

from bot.config.apps_file import AppConfig, HostConfig
from bot.ports import CommandResult, Decide, LineSink, ScriptCommand
from bot.telemetry.metrics import SSH_FAILURES, SSH_SECONDS
from bot.workflow.errors import HostError
from runners import script
from runners.stream import collect

log = logging.getLogger(__name__)


def explain(
    exc: BaseException, host: HostConfig, user: str, timeout: float, app: AppConfig | None = None
) -> HostError:
    """Turn a connection failure into words an on-call engineer can act on: which of the host,
    the key, the known_hosts entry or the network is at fault."""
    where = f"{host.address}:{host.port}"
    known_hosts = app.ssh.known_hosts if app else None
    keys = list(app.ssh.client_keys) if app else []
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename and str(filename) == str(known_hosts):
        return HostError(
            f"known_hosts: the file {filename} cannot be read ({exc.strerror})",
            host=host.name,
            hint="Fix ssh.known_hosts (the path, or the file's permissions), then Retry.",
        )
    if isinstance(exc, OSError) and filename and str(filename) in keys:
        return HostError(
            f"key: the client key {filename} cannot be read ({exc.strerror})",
            host=host.name,
            hint="Fix ssh.client_keys (the path, or the file's permissions), then Retry.",
        )
    if isinstance(exc, asyncssh.KeyImportError):
        return HostError(
            f"key: a client key in {', '.join(keys) or 'ssh.client_keys'} cannot be used ({exc})",
            host=host.name,
            hint="Use an unencrypted private key (OpenSSH format) the bot can read, then Retry.",
        )
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        if known_hosts and not _has_entry(known_hosts, host):
            return HostError(
                f"known_hosts entry: {known_hosts} has no entry for {where}",
                host=host.name,
                hint=f"Add it (ssh-keyscan -p {host.port} {host.address} >> {known_hosts}, then "
                "check the fingerprint), then Retry. Rewind never skips this check.",
            )
        return HostError(
            f"known_hosts entry: the host key of {where} does not match known_hosts",
            host=host.name,
            hint="The host was rebuilt or someone is in the middle. Check the key and update "
            "known_hosts, then Retry. Rewind never skips this check.",
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return HostError(
            f"key: SSH login as {user!r} to {where} was refused",
            host=host.name,
            hint="Check the user and that its authorized_keys holds the bot's key, then Retry.",
        )
    if isinstance(exc, TimeoutError):
        return HostError(
            f"network: no SSH answer from {where} within {timeout:g}s",
            host=host.name,
            hint="Is the host up and the port open (firewall)? Retry when it is, or Abort.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return HostError(
            f"host: connection to {where} refused",
            host=host.name,
            hint="sshd is not listening there. Start it or fix the address/port, then Retry.",
        )
    if isinstance(exc, socket.gaierror):
        return HostError(
            f"host: the address {host.address!r} does not resolve ({exc.strerror})",
            host=host.name,
            hint="Fix the host's address (or DNS), then Retry.",
        )
    if isinstance(exc, asyncssh.DisconnectError | asyncssh.ConnectionLost):
        return HostError(
            f"network: SSH connection to {where} dropped ({exc})",
            host=host.name,
            hint="Retry when the host is reachable.",
        )
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return HostError(
            f"network: cannot reach {where} ({exc.strerror})",
            host=host.name,
            hint="Check the route to the host (VPN, firewall), then Retry.",
        )
    return HostError(
        f"cannot reach {where}: {exc}",
        host=host.name,
        hint="Check the address and the network, then Retry.",
    )


_NETWORK_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def _has_entry(known_hosts: str, host: HostConfig) -> bool:
    try:
        known = asyncssh.read_known_hosts(known_hosts)
    except (OSError, ValueError, asyncssh.Error):
        return False
    keys, cas, *_ = known.match(host.address, _ip_or_empty(host.address), host.port)
    return bool(keys or cas)


class SshRunner:
    """`bot.ports.HostRunner` over asyncssh."""

    def __init__(self, app: AppConfig) -> None:
        self.app = app
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {h.name: asyncio.Lock() for h in app.hosts}

    async def _connect(self, host: HostConfig) -> asyncssh.SSHClientConnection:
        async with self._locks[host.name]:
            conn = self._conns.get(host.name)
            if conn is not None and not conn.is_closed():
                return conn
            ssh = self.app.ssh
            try:
                conn = await asyncio.wait_for(
                    asyncssh.connect(
                        host.address,
                        host.port,
                        username=ssh.user,
                        known_hosts=ssh.known_hosts,
                        client_keys=ssh.client_keys or None,
                        agent_path=None,
                        connect_timeout=ssh.connect_timeout,
                        keepalive_interval=15,
                    ),
                    timeout=ssh.connect_timeout + 1,
                )
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                raise explain(exc, host, ssh.user, ssh.connect_timeout, self.app) from exc
            self._conns[host.name] = conn
            return conn

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        try:
            result = await self._run(host, command, timeout=timeout, on_line=on_line)
        except HostError:
            SSH_FAILURES.labels(app=self.app.name, host=host, kind="connection").inc()
            raise
        SSH_SECONDS.labels(app=self.app.name, host=host).observe(result.duration)
        if result.exit_status is None:
            SSH_FAILURES.labels(app=self.app.name, host=host, kind="timeout").inc()
        elif result.exit_status != 0:
            SSH_FAILURES.labels(app=self.app.name, host=host, kind="exit").inc()
        return result

    async def _run(
        self, host: str, command: str, *, timeout: float | None, on_line: LineSink | None
    ) -> CommandResult:
        cfg = self.app.host(host)
        started = time.monotonic()
        conn, process = await self._session(cfg, command)

        async def wait() -> int | None:
            await process.wait()
            return process.exit_status

        async def kill() -> None:
            process.kill()

        try:
            status, lines = await collect(
                host, process.stdout, wait, kill, timeout=timeout, on_line=on_line
            )
        except (asyncssh.Error, OSError) as exc:
            self._forget(host, conn)
            raise explain(exc, cfg, self.app.ssh.user, self.app.ssh.connect_timeout) from exc
        finally:
            process.close()
        return CommandResult(host, command, status, "\n".join(lines), time.monotonic() - started)

    async def run_script(
        self,
        host: str,
        commands: Sequence[ScriptCommand],
        *,
        timeout: float | None = None,
        decide: Decide | None = None,
        on_line: LineSink | None = None,
    ) -> list[CommandResult | None]:
        cfg = self.app.host(host)
        tag = script.new_tag()
        conn, process = await self._session(cfg, script.build(commands, tag))

        async def write(text: str) -> None:
            process.stdin.write(text)
            await process.stdin.drain()

        async def wait() -> int | None:
            await process.wait()
            return process.exit_status

        async def kill() -> None:
            process.kill()  # sshd may ignore the signal; closing the channel ends the script too
            process.close()

        try:
            return await script.drive(
                host, commands, tag, process.stdout, write, wait, kill,
                decide=decide, on_line=on_line, default_timeout=timeout,
            )  # fmt: skip
        except (asyncssh.Error, OSError) as exc:
            self._forget(host, conn)
            raise explain(exc, cfg, self.app.ssh.user, self.app.ssh.connect_timeout) from exc
        finally:
            process.close()

    async def _session(
        self, cfg: HostConfig, command: str
    ) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[str]]:
        """A session running `command` on the host's connection, stderr into stdout.

        A kept connection may have died since its last command (the host restarted, its sshd
        was killed) without this process having seen it yet. If it turns out lost before the
        session was even open, the command cannot have been sent: it is opened once more on a
        new connection. Once the session is open the command may have started, so a loss from
        then on is an error for the step to handle (it never runs a command twice)."""
        for last in (False, True):
            conn = await self._connect(cfg)
            opened = False

            def process() -> asyncssh.SSHClientProcess[str]:
                nonlocal opened
                opened = True  # called once the channel is open, before the command is sent
                return asyncssh.SSHClientProcess()

            try:
                _, session = await conn.create_session(process, command)
                proc = cast("asyncssh.SSHClientProcess[str]", session)
                await proc.redirect(stderr=asyncssh.STDOUT)
            except (OSError, asyncssh.Error) as exc:
                self._forget(cfg.name, conn)
                if last or opened or not conn.is_closed():
                    raise explain(
                        exc, cfg, self.app.ssh.user, self.app.ssh.connect_timeout
                    ) from exc
                log.info(
                    "SSH connection to %s was lost since its last use: connecting again", cfg.name
                )
                continue
            return conn, proc
        raise AssertionError("unreachable")

    def _forget(self, host: str, conn: asyncssh.SSHClientConnection) -> None:
        """A lost connection is dropped, so the next command connects again. Only that one:
        another command on this host may already have replaced it, and a channel's own error
        leaves the connection (and the other sessions on it) as they are."""
        if conn.is_closed() and self._conns.get(host) is conn:
            del self._conns[host]

    async def close(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()


def _ip_or_empty(address: str) -> str:
    """known_hosts matching wants an IP address as `addr`; a host name matches by name."""
    import ipaddress

    try:
        ipaddress.ip_address(address)
    except ValueError:
        return ""
    return address
