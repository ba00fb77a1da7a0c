"""The shipped config files (the example apps file, the Slack manifest) and bad apps files."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bot.checks.health import HealthCheck
from bot.config.apps_file import (
    AppConfig,
    AppsFile,
    DatabaseConfig,
    DeployConfig,
    EnvironmentsConfig,
    HostConfig,
    IncidentsConfig,
    LogsConfig,
    MonitorConfig,
    SshConfig,
    VerifyConfig,
    WatchConfig,
    WebhookConfig,
    load_apps,
)
from bot.workflow.errors import ConfigError
from runners.strategies import strategy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "apps.example.yaml"
MANIFEST = ROOT / "slack" / "manifest.yml"
EVENTS_URL = "https://rewind.example.com/slack/events"


# ---- config/apps.example.yaml ----------------------------------------------------------------


def test_example_apps_file_loads_with_every_documented_key() -> None:
    apps = load_apps(EXAMPLE)
    assert set(apps.apps) == {"myapp", "billing"}
    app = apps.apps["myapp"]
    assert app.name == "myapp"
    assert app.production
    assert app.repo == "git@github.com:acme/myapp.git"
    assert app.incident_channel == "C0INCIDENT"
    assert app.notify == ["C0STAKEHOLDERS"]
    assert app.mention == ["<!subteam^S0ONCALL>"]
    assert app.operators == ["U0CAROL", "S0ONCALL"]
    assert app.approvers == ["U0ALICE", "U0BOB"]

    assert app.ssh.transport == "ssh"
    assert app.ssh.user == "deploy"
    assert app.ssh.known_hosts == "/etc/rewind/known_hosts"
    assert app.ssh.client_keys == ["/etc/rewind/id_ed25519"]
    assert app.ssh.connect_timeout == 10.0

    assert [h.name for h in app.hosts] == ["web1", "web2"]
    web1, web2 = app.hosts
    assert (web1.address, web1.port, web1.vars) == ("10.0.0.11", 22, {"app_port": "8000"})
    assert web2.port == 22  # the default
    assert app.workdir(web1) == "/srv/myapp"
    assert app.workdir(web2) == "/srv/myapp-blue"

    deploy = app.deploy
    assert (deploy.strategy, deploy.workdir, deploy.service) == ("systemd", "/srv/myapp", "myapp")
    assert set(deploy.commands) == {"fetch", "install", "restart", "status", "logs", "version"}
    assert (deploy.concurrency, deploy.rolling, deploy.timeout) == (10, 1, 300.0)

    db = app.database
    assert db is not None
    assert db.run_on == "web1"
    assert db.alembic == "alembic -c alembic.ini"
    assert db.backup == "pg_dump mydb > {backup}"
    assert db.restore and db.verify and db.backups
    assert (db.backup_dir, db.versions_dir) == ("/var/backups", "alembic/versions")

    assert [c.url for c in app.health] == [
        "https://myapp.com/healthz",
        "https://myapp.com/api/health",
        "http://{address}:{app_port}/healthz",
    ]
    assert app.health[0].status == 200
    assert app.health[1].json_ == {"status": "ok"}
    assert app.health[2].timeout == 3.0
    assert app.logs.error_pattern == r"(?i)\b(error|critical|traceback)\b"
    assert list(app.smoke) == ["./smoke.sh login", "./smoke.sh checkout"]
    assert (app.verify.health_timeout, app.verify.health_interval) == (60.0, 2.0)
    m = app.monitor
    assert (m.duration, m.interval, m.summary_every, m.failure_streak) == (900.0, 30.0, 300.0, 3)

    billing = apps.apps["billing"]
    assert not billing.production
    assert billing.deploy.strategy == "docker-compose"
    assert billing.database is None
    assert billing.monitor.duration == 900.0  # defaults
    assert apps.incidents.dir == str(Path.cwd() / "incidents")  # made absolute at load


def test_example_health_urls_expand_per_host() -> None:
    from bot.checks.health import targets

    urls = [t.url for t in targets(load_apps(EXAMPLE).apps["myapp"])]
    assert "http://10.0.0.11:8000/healthz" in urls
    assert "http://10.0.0.12:8001/healthz" in urls


def test_example_command_templates_render() -> None:
    from bot.cli.check import check_templates

    for app in load_apps(EXAMPLE).apps.values():
        assert check_templates(app) == []


def _keys(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def _union(items: list[dict[str, Any]]) -> set[str]:
    return set().union(*(set(i) for i in items))


def test_the_example_shows_every_key_the_model_accepts() -> None:
    """A key added to bot/config/apps_file.py must be documented in the example too."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    app = raw["apps"]["myapp"]
    assert set(raw) == _keys(AppsFile) - {"path"}
    assert set(raw["incidents"]) == _keys(IncidentsConfig)
    assert set(raw["environments"]) == _keys(EnvironmentsConfig)
    assert set(app) == _keys(AppConfig) - {"name"}  # the name is the key under `apps:`
    assert set(app["ssh"]) == _keys(SshConfig)
    assert _union(app["hosts"]) == _keys(HostConfig)
    assert set(app["deploy"]) == _keys(DeployConfig)
    assert set(app["database"]) == _keys(DatabaseConfig)
    assert _union(app["health"]) == _keys(HealthCheck)
    assert set(app["logs"]) == _keys(LogsConfig)
    assert set(app["monitor"]) == _keys(MonitorConfig)
    assert set(app["verify"]) == _keys(VerifyConfig)
    assert set(app["watch"]) == _keys(WatchConfig)
    assert _union(app["webhooks"]) == _keys(WebhookConfig)
    assert set(app["deploy"]["commands"]) | {"stop", "start"} == set(strategy("systemd").defaults)


def test_no_live_apps_file_is_shipped() -> None:
    assert not (ROOT / "config" / "apps.yaml").exists()


# ---- slack/manifest.yml ----------------------------------------------------------------------


def test_slack_manifest() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["display_information"]["name"] == "Rewind"
    features = manifest["features"]
    assert features["bot_user"]["display_name"] == "Rewind"
    assert features["app_home"]["home_tab_enabled"] is True
    [command] = features["slash_commands"]
    assert command["command"] == "/rollback"
    assert command["url"] == EVENTS_URL
    hint = command["usage_hint"]
    for word in (
        "APP [VERSION]",
        "plan APP",
        "status",
        "list",
        "cancel ID",
        "unfreeze APP",
        "help",
    ):
        assert word in hint
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "chat:write.public",
        "files:write",
        "usergroups:read",
        "channels:history",
        "groups:history",
        "users:read",
    }
    settings = manifest["settings"]
    assert settings["interactivity"] == {"is_enabled": True, "request_url": EVENTS_URL}
    assert settings["event_subscriptions"]["request_url"] == EVENTS_URL
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert settings["socket_mode_enabled"] is False
    # Slack's own limits on the manifest's texts.
    assert len(manifest["display_information"]["description"]) <= 140
    assert 175 <= len(manifest["display_information"]["long_description"]) <= 4000
    assert len(command["description"]) <= 100


def test_procfile_matches_the_contract() -> None:
    assert (ROOT / "Procfile").read_text() == (
        "web:    python -m bot serve\nworker: python -m bot worker\n"
    )


# ---- bad apps files --------------------------------------------------------------------------


def valid_app() -> dict[str, Any]:
    return {
        "environment": "staging",
        "repo": "/tmp/myapp.git",
        "incident_channel": "C0INCIDENT",
        "operators": ["U0CAROL"],
        "ssh": {"transport": "local"},
        "hosts": [
            {"name": "web1", "address": "10.0.0.11"},
            {"name": "web2", "address": "10.0.0.12"},
        ],
        "deploy": {"strategy": "systemd", "workdir": "/srv/myapp", "service": "myapp"},
    }


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_apps(path)
    return info.value


def assert_names(err: ConfigError, path: Path, key: str, *reason: str) -> None:
    message = str(err)
    assert str(path) in message
    assert key in message
    for word in reason:
        assert word in message, message


def test_a_valid_file_loads(tmp_path: Path) -> None:
    apps = load_apps(write(tmp_path / "apps.yaml", {"apps": {"myapp": valid_app()}}))
    assert apps.apps["myapp"].hosts[1].name == "web2"


def test_missing_apps(tmp_path: Path) -> None:
    path = write(tmp_path / "apps.yaml", {"incidents": {"dir": "incidents/"}})
    err = load_error(path)
    assert err.key == "apps"
    assert_names(err, path, "apps", "missing")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text("")
    assert_names(load_error(path), path, "apps", "missing")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    app = valid_app()
    app["deploy"]["stratgy"] = "commands"
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": app}})
    err = load_error(path)
    assert err.key == "apps.myapp.deploy.stratgy"
    assert_names(err, path, "apps.myapp.deploy.stratgy", "unknown key", "did you mean `strategy`?")


def test_a_blank_smoke_test_is_refused(tmp_path: Path) -> None:
    """A blank command exits 0: it would read as a passed smoke test."""
    app = valid_app()
    app["smoke"] = ["./smoke.sh login", "  "]
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": app}})
    assert_names(load_error(path), path, "smoke", "smoke[1] is blank")


@pytest.mark.parametrize(
    ("section", "field"),
    [("monitor", "duration"), ("monitor", "interval"), ("deploy", "timeout")],
)
def test_bad_duration(tmp_path: Path, section: str, field: str) -> None:
    app = valid_app()
    app.setdefault(section, {})[field] = "15 minutes"
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": app}})
    err = load_error(path)
    assert err.key == f"apps.myapp.{section}.{field}"
    assert_names(err, path, f"apps.myapp.{section}.{field}", "not a duration", "15 minutes")


def test_database_run_on_not_a_host(tmp_path: Path) -> None:
    app = valid_app()
    app["database"] = {"run_on": "db1"}
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": app}})
    assert_names(load_error(path), path, "apps.myapp", "database.run_on", "db1", "web1")


def test_ssh_transport_needs_known_hosts(tmp_path: Path) -> None:
    app = valid_app()
    app["ssh"] = {"transport": "ssh", "user": "deploy"}
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": app}})
    assert_names(load_error(path), path, "apps.myapp", "ssh.known_hosts", "required")


def test_commands_strategy_needs_its_commands(tmp_path: Path) -> None:
    app = valid_app()
    app["deploy"] = {"strategy": "commands", "workdir": "/srv/myapp", "commands": {"fetch": "x"}}
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": app}})
    assert_names(load_error(path), path, "apps.myapp.deploy", "install", "restart")


def test_auto_rollback_is_refused_for_production(tmp_path: Path) -> None:
    app = valid_app()
    app.update(environment="production", auto_rollback=True, watch={"duration": "5m"})
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": app}})
    assert_names(load_error(path), path, "apps.myapp", "auto_rollback", "production")
    app["environment"] = "staging"
    assert load_apps(write(path, {"apps": {"myapp": app}})).apps["myapp"].auto_rollback


def test_a_webhook_needs_an_http_url_and_a_secret(tmp_path: Path) -> None:
    app = valid_app()
    app["webhooks"] = [{"url": "ftp://status.example/hook", "secret": "s"}]
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": app}})
    assert_names(load_error(path), path, "apps.myapp.webhooks[0].url", "http")
    app["webhooks"] = [{"url": "https://status.example/hook"}]
    assert_names(load_error(write(path, {"apps": {"myapp": app}})), path, "secret")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text("apps:\n  myapp:\n    repo: /tmp/x\n    hosts: [web1\n    deploy: {}\n")
    err = load_error(path)
    # where the `[` was opened (line 4, column 12), not where the parser gave up (line 5)
    assert_names(err, path, f"{path}:4:12: ", "unclosed `[` opened here", "line 5")
    assert "    hosts: [web1\n" in str(err) and "           ^" in str(err)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert_names(load_error(path), path, "(file)", "cannot read")


# ---- python -m bot check ---------------------------------------------------------------------


def run_check(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    env["REWIND_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_passes_on_a_valid_file(tmp_path: Path) -> None:
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": valid_app()}})
    result = run_check(path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "myapp" in result.stdout
    assert "all well" in result.stdout


def test_check_on_the_example_wants_only_the_files_of_a_real_install(tmp_path: Path) -> None:
    result = run_check(EXAMPLE, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, result.stdout
    assert all("/etc/rewind/" in p and "cannot read" in p for p in problems), result.stdout


def test_check_fails_on_a_bad_file(tmp_path: Path) -> None:
    data = {"apps": {"myapp": copy.deepcopy(valid_app())}}
    data["apps"]["myapp"]["deploy"]["stratgy"] = "commands"
    path = write(tmp_path / "apps.yaml", data)
    result = run_check(path, tmp_path)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert str(path) in out
    assert "apps.myapp.deploy.stratgy" in out


def test_check_reports_a_bad_template(tmp_path: Path) -> None:
    app = valid_app()
    app["deploy"]["commands"] = {"restart": "systemctl restart {nope}"}
    path = write(tmp_path / "apps.yaml", {"apps": {"myapp": app}})
    result = run_check(path, tmp_path)
    assert result.returncode == 1
    assert "apps.myapp.deploy.commands.restart" in result.stdout
    assert "nope" in result.stdout


# Each bot scope the manifest asks for, and the Web API call in the code that needs it.
SCOPE_USES = {
    "chat:write": "chat_postMessage(",
    "chat:write.public": "chat_postMessage(",
    "files:write": "files_upload_v2(",
    "usergroups:read": "usergroups_users_list(",
    "channels:history": "conversations_replies",
    "groups:history": "conversations_replies",
    "users:read": "users_info(",
}


def test_the_manifest_asks_only_for_scopes_the_code_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"]) - {"commands"}
    assert scopes <= set(SCOPE_USES), scopes - set(SCOPE_USES)
    code = "\n".join(p.read_text() for d in ("bot",) for p in (ROOT / d).rglob("*.py"))
    for scope in scopes:
        assert SCOPE_USES[scope] in code, f"{scope}: nothing calls {SCOPE_USES[scope]}"
