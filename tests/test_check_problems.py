"""`python -m bot check` on broken apps files: every problem listed, each with its line, its key
and what to do; and the same validation stops `load_apps` (so `serve` and `worker`) too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config.apps_file import load_apps
from bot.workflow.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
apps:
  myapp:
    environment: staging
    repo: /tmp/myapp.git
    incident_channel: C0INCIDENT
    notify: [C0STAKEHOLDERS]
    operators: [U0CAROL]
    approvers: [U0ALICE, S0ONCALL]
    ssh:
      user: deploy
      known_hosts: {known_hosts}
    hosts:
      - {{name: web1, address: 10.0.0.11}}
      - {{name: web2, address: web2.example.com, port: 2222}}
    deploy:
      strategy: commands
      workdir: /srv/myapp
      commands:
        fetch: "git fetch --tags origin && git checkout --force {{ref}}"
        install: "pip install -r requirements.txt"
        restart: "./run.sh restart"
        status: "./run.sh status"
        version: "git describe --tags --always"
    health:
      - {{url: "http://{{address}}:8000/healthz", status: 200}}
"""
KNOWN_HOSTS = (
    "10.0.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    "[web2.example.com]:2222 ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
)


def good(tmp_path: Path) -> str:
    known = tmp_path / "known_hosts"
    known.write_text(KNOWN_HOSTS)
    return GOOD.format(known_hosts=known)


def line_of(text: str, needle: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in the file")


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "apps.yaml"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    env |= {"REWIND_CONFIG": str(path), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "check"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_good_file_passes(tmp_path: Path) -> None:
    result = check(tmp_path, good(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ all well" in result.stdout


# (what to break: old text -> new text, the key named, words of the problem, line's marker)
BROKEN = [
    pytest.param(
        "address: 10.0.0.11",
        "address: -oProxyCommand=touch /tmp/pwned",
        "apps.myapp.hosts[0].address",
        "not a host name or IP address",
        "-oProxyCommand",
        id="option-as-address",
    ),
    pytest.param(
        "address: 10.0.0.11",
        "address: 10.0.0.300",
        "apps.myapp.hosts[0].address",
        "not a valid IP address",
        "10.0.0.300",
        id="bad-ip",
    ),
    pytest.param(
        "address: web2.example.com",
        "address: web 2.example.com",
        "apps.myapp.hosts[1].address",
        "not a host name",
        "web 2.example.com",
        id="space-in-hostname",
    ),
    pytest.param(
        "incident_channel: C0INCIDENT",
        "incident_chanel: C0INCIDENT",
        "apps.myapp.incident_chanel",
        "did you mean `incident_channel`?",
        "incident_chanel",
        id="typo-key",
    ),
    pytest.param(
        "incident_channel: C0INCIDENT",
        'incident_channel: "#incidents"',
        "apps.myapp.incident_channel",
        "not a channel id",
        "#incidents",
        id="channel-name",
    ),
    pytest.param(
        "notify: [C0STAKEHOLDERS]",
        "notify: [C0STAKEHOLDERS, stakeholders]",
        "apps.myapp.notify",
        "[1] 'stakeholders' is not a channel id",
        "notify:",
        id="notify-name",
    ),
    pytest.param(
        "operators: [U0CAROL]",
        'operators: ["@alice"]',
        "apps.myapp.operators[0]",
        "`@alice` names nobody: not an id, not in `people:`",
        "operators:",
        id="operator-name",
    ),
    pytest.param(
        "approvers: [U0ALICE, S0ONCALL]",
        "approvers: [U0ALICE, oncall]",
        "apps.myapp.approvers[1]",
        "`oncall` names nobody",
        "approvers:",
        id="approver-name",
    ),
    pytest.param(
        'restart: "./run.sh restart"',
        'restart: "./run.sh restart {adress}"',
        "apps.myapp.deploy.commands.restart",
        "unknown placeholder {adress}",
        "restart:",
        id="unknown-placeholder",
    ),
    pytest.param(
        'restart: "./run.sh restart"',
        'restart: "./run.sh restart {ref"',
        "apps.myapp.deploy.commands.restart",
        "bad braces",
        "restart:",
        id="bad-braces",
    ),
    pytest.param(
        'url: "http://{address}:8000/healthz"',
        'url: "myapp.com/healthz"',
        "apps.myapp.health[0].url",
        "not an http(s) URL",
        "myapp.com/healthz",
        id="url-without-scheme",
    ),
    pytest.param(
        'url: "http://{address}:8000/healthz"',
        'url: "http://{adress}:8000/healthz"',
        "apps.myapp.health[0].url",
        "did you mean {address}?",
        "{adress}",
        id="url-placeholder",
    ),
    pytest.param(
        "strategy: commands",
        "stratgy: commands",
        "apps.myapp.deploy.stratgy",
        "did you mean `strategy`?",
        "stratgy",
        id="typo-nested-key",
    ),
    pytest.param(
        "      user: deploy",
        "      user: deploy\n      kown_hosts: /x",
        "apps.myapp.ssh.kown_hosts",
        "unknown key `kown_hosts`",
        "kown_hosts",
        id="typo-ssh-key",
    ),
    pytest.param(
        "{name: web2, address: web2.example.com, port: 2222}",
        "{name: web2, address: web2.example.com, port: 70000}",
        "apps.myapp.hosts[1].port",
        "less than or equal to 65535",
        "port: 70000",
        id="bad-port",
    ),
    pytest.param(
        "{name: web2, address: web2.example.com, port: 2222}",
        "{name: web2, address: web3.example.com, port: 2222}",
        "apps.myapp.hosts[1].address",
        "has no entry for [web3.example.com]:2222",
        "web3.example.com",
        id="no-known-hosts-entry",
    ),
    pytest.param(
        "    repo: /tmp/myapp.git\n",
        "",
        "apps.myapp.repo",
        "required key is missing",
        "  myapp:",
        id="missing-repo",
    ),
]


@pytest.mark.parametrize(("old", "new", "key", "words", "marker"), BROKEN)
def test_a_broken_file_names_the_line_and_the_key(
    tmp_path: Path, old: str, new: str, key: str, words: str, marker: str
) -> None:
    text = good(tmp_path)
    assert old in text
    text = text.replace(old, new, 1)
    result = check(tmp_path, text)
    assert result.returncode == 1, result.stdout + result.stderr
    line = line_of(text, marker)
    wanted = f"apps.yaml:{line}: {key}: "
    hits = [row for row in result.stdout.splitlines() if wanted in row]
    assert hits, f"{wanted!r} not in:\n{result.stdout}"
    assert words in hits[0], hits[0]
    assert "Traceback" not in result.stderr


def test_every_problem_in_one_list(tmp_path: Path) -> None:
    text = (
        good(tmp_path)
        .replace("address: 10.0.0.11", "address: -oProxyCommand=touch /tmp/pwned")
        .replace("incident_channel: C0INCIDENT", "incident_chanel: C0INCIDENT")
        .replace('restart: "./run.sh restart"', 'restart: "./run.sh restart {adress}"')
        .replace("operators: [U0CAROL]", 'operators: ["@alice"]')
    )
    result = check(tmp_path, text)
    assert result.returncode == 1
    assert "✗ 4 problem(s):" in result.stdout, result.stdout
    for key in ("hosts[0].address", "incident_chanel", "commands.restart", "operators"):
        assert key in result.stdout
    # The typo'd key is reported as the typo, not as the right key "missing".
    assert "required key is missing" not in result.stdout


def test_a_hostile_address_never_loads(tmp_path: Path) -> None:
    """What `serve` and `worker` load goes through the same validation."""
    path = tmp_path / "apps.yaml"
    path.write_text(good(tmp_path).replace("10.0.0.11", "-oProxyCommand=touch /tmp/pwned"))
    with pytest.raises(ConfigError) as info:
        load_apps(path)
    assert info.value.key == "apps.myapp.hosts[0].address"
    assert "apps.yaml:13:" in str(info.value)
