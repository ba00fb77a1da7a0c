"""The SSH runner against real sshd hosts: streaming, timeouts, and failures in plain words."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncssh
import pytest

from bot.config.apps_file import parse_apps
from bot.workflow.errors import HostError
from runners.ssh import SshRunner
from tests.fixtures_hosts import SshEnv


def runner(env: SshEnv, **ssh: object) -> SshRunner:
    cfg = env.app_config()
    cfg["ssh"] = {**cfg["ssh"], **ssh}
    return SshRunner(parse_apps({"apps": {"myapp": cfg}}, "test").apps["myapp"])


async def test_streams_lines_and_reuses_one_connection(ssh_env: SshEnv) -> None:
    r = runner(ssh_env)
    seen: list[tuple[str, str]] = []

    async def sink(host: str, line: str) -> None:
        seen.append((host, line))

    try:
        res = await r.run("web1", "echo one; echo two >&2; exit 3", on_line=sink)
        again = await r.run("web1", f"cd {ssh_env.workdir} && git describe --tags")
    finally:
        await r.close()
    assert res.exit_status == 3 and not res.ok
    assert ("web1", "one") in seen and ("web1", "two") in seen
    assert again.output.strip() == "v1.5.0"
    log = ssh_env.hosts[0].sshd_log.read_text()
    assert log.count("Accepted publickey") == 1


async def test_a_command_that_hangs_mid_way_is_killed_and_the_others_go_on(
    ssh_env: SshEnv,
) -> None:
    r = runner(ssh_env)
    lines: list[tuple[str, str]] = []

    async def sink(host: str, line: str) -> None:
        lines.append((host, line))

    try:
        hung, other = await asyncio.gather(
            r.run("web1", "echo half-way; sleep 60", timeout=3, on_line=sink),
            r.run("web2", f"sleep 4; cd {ssh_env.workdir} && git describe --tags", timeout=30),
        )
        after = await r.run("web1", f"cd {ssh_env.workdir} && git describe --tags", timeout=10)
    finally:
        await r.close()
    assert hung.exit_status is None and "killed after 3s" in hung.output
    assert ("web1", "half-way") in lines, hung.output  # what it printed before it hung is kept
    assert other.ok and other.output.strip() == "v1.5.0"  # the other host went on
    assert after.ok and after.output.strip() == "v1.5.0"  # and the hung host is usable again


async def test_a_connection_dropped_mid_stream_is_said_in_plain_words(ssh_env: SshEnv) -> None:
    r = runner(ssh_env)
    lines: list[str] = []

    async def sink(host: str, line: str) -> None:
        lines.append(line)

    # The command's parent is the host's sshd session: killing it drops the connection.
    dropping = "echo first; sleep 0.5; kill -9 $PPID; sleep 5; echo never"
    try:
        with pytest.raises(HostError, match=r"dropped|lost|closed") as err:
            await asyncio.wait_for(r.run("web1", dropping, timeout=20, on_line=sink), 30)
        again = await r.run("web1", f"cd {ssh_env.workdir} && git describe --tags")  # reconnects
    finally:
        await r.close()
    assert err.value.host == "web1" and "Retry" in err.value.hint
    assert lines == ["first"]
    assert again.ok and again.output.strip() == "v1.5.0"


async def test_wrong_key_is_an_auth_failure_in_plain_words(ssh_env: SshEnv, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    other.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    other.chmod(0o600)
    r = runner(ssh_env, client_keys=[str(other)])
    with pytest.raises(HostError, match=r"SSH login as .root. .* was refused") as err:
        await r.run("web2", "true")
    assert err.value.host == "web2" and "authorized_keys" in err.value.hint


async def test_a_host_that_never_answers_times_out(ssh_env: SshEnv) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    cfg = ssh_env.app_config()
    cfg["hosts"][0]["port"] = silent.getsockname()[1]
    cfg["ssh"]["connect_timeout"] = 1
    r = SshRunner(parse_apps({"apps": {"myapp": cfg}}, "test").apps["myapp"])
    try:
        with pytest.raises(HostError, match=r"no SSH answer .* within 1s"):
            await asyncio.wait_for(r.run("web1", "true"), 10)
    finally:
        silent.close()


async def test_the_hosts_command_log_holds_each_command_as_sent(ssh_env: SshEnv) -> None:
    r = runner(ssh_env)
    try:
        multi = "echo 'a b'\necho second line"
        result = await r.run("web1", multi)
        assert result.ok and "a b" in result.output and "second line" in result.output
        failed = await r.run("web2", "exit 3")
        assert failed.exit_status == 3
    finally:
        await r.close()
    assert ssh_env.hosts[0].commands() == [multi]
    assert ssh_env.hosts[1].commands() == ["exit 3"]
