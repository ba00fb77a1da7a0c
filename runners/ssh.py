"""Run commands on the app's hosts over SSH (asyncssh), streaming output line by line.

One connection per host, opened on first use and reused for the whole incident. Host keys are
always checked against the app's `known_hosts`; there is no switch to turn that off.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncssh

from bot.apps_file import AppConfig, HostConfig
from bot.errors import HostError
from bot.metrics import SSH_FAILURES, SSH_SECONDS
from bot.ports import CommandResult, LineSink
from runners.stream import collect

log = logging.getLogger(__name__)


def explain(exc: BaseException, host: HostConfig, user: str, timeout: float) -> HostError:
    """Turn a connection failure into words an on-call engineer can act on."""
    where = f"{host.address}:{host.port}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return HostError(
            f"host key of {where} does not match known_hosts",
            host=host.name,
            hint="The host was rebuilt or someone is in the middle. Check the key and update "
            "known_hosts, then Retry. Rewind never skips this check.",
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return HostError(
            f"SSH login as {user!r} to {where} was refused",
            host=host.name,
            hint="Check the user and that its authorized_keys holds the bot's key, then Retry.",
        )
    if isinstance(exc, TimeoutError):
        return HostError(
            f"no SSH answer from {where} within {timeout:g}s",
            host=host.name,
            hint="Is the host up and port open? Retry when it is, or Abort.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return HostError(
            f"connection to {where} refused",
            host=host.name,
            hint="sshd is not listening there. Start it or fix the address/port, then Retry.",
        )
    if isinstance(exc, asyncssh.DisconnectError | asyncssh.ConnectionLost):
        return HostError(
            f"SSH connection to {where} dropped ({exc})",
            host=host.name,
            hint="Retry when the host is reachable.",
        )
    return HostError(
        f"cannot reach {where}: {exc}",
        host=host.name,
        hint="Check the address and the network, then Retry.",
    )


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
                raise explain(exc, host, ssh.user, ssh.connect_timeout) from exc
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
        conn = await self._connect(cfg)
        started = time.monotonic()
        try:
            process = await conn.create_process(command, stderr=asyncssh.STDOUT)
        except (OSError, asyncssh.Error) as exc:
            self._conns.pop(host, None)
            raise explain(exc, cfg, self.app.ssh.user, self.app.ssh.connect_timeout) from exc

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
            self._conns.pop(host, None)
            raise explain(exc, cfg, self.app.ssh.user, self.app.ssh.connect_timeout) from exc
        finally:
            process.close()
        return CommandResult(host, command, status, "\n".join(lines), time.monotonic() - started)

    async def close(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()
