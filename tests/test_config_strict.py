"""Every setting that decides a protection is read strictly (README: "Settings that decide a
protection, and how each is read"): a typo or an omission is an error in `rewind check`, and so
in `serve` and `worker`, which refuse the same file. Each case runs the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config.apps_file import load_apps
from bot.workflow.model import Incident
from bot.workflow.policy import NON_PRODUCTION_ENVIRONMENTS, PRODUCTION_ENVIRONMENTS

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
apps:
  myapp:
    environment: production
    repo: /tmp/myapp.git
    incident_channel: C0INCIDENT
    operators: [U0CAROL]
    approvers: [alice, S0ONCALL]
    ssh: {transport: local}
    hosts:
      - {name: web1, address: 10.0.0.11}
      - {name: web2, address: 10.0.0.12}
    deploy: {strategy: systemd, workdir: /srv/myapp, service: myapp}
    database: {run_on: web1}
    watch: {duration: 15m, interval: 30s}
    auto_rollback: false
people:
  alice: U0ALICE
"""


def run(tmp_path: Path, text: str, command: str = "check") -> subprocess.CompletedProcess[str]:
    path = tmp_path / "apps.yaml"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    env |= {"REWIND_CONFIG": str(path), "PYTHONPATH": str(ROOT)}
    # serve and worker read the file before anything else: no Redis or Slack is reached.
    env |= {
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_SIGNING_SECRET": "s",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", command], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def edited(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_good_file_passes_and_reads_as_production(tmp_path: Path) -> None:
    result = run(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ all well" in result.stdout
    app = load_apps(tmp_path / "apps.yaml").apps["myapp"]
    assert app.production
    assert app.approvers == ["U0ALICE", "S0ONCALL"]  # a `people:` name stands for its id


# (what to break: old text -> new text, the key named, words of the problem, line's marker)
STRICT = [
    pytest.param("environment: production", "environment: prodution", "apps.myapp.environment",
                 ["unknown environment `prodution`", "did you mean `production`?"],
                 "prodution", id="environment-typo"),
    pytest.param("environment: production", "environment: preprod", "apps.myapp.environment",
                 ["unknown environment `preprod`", "`environments:`"], "preprod",
                 id="environment-unknown"),
    pytest.param("{name: web2, address: 10.0.0.12}", "{name: web2}",
                 "apps.myapp.hosts[1].address", ["missing: the host's address", "never"],
                 "{name: web2}", id="host-without-address"),
    pytest.param("approvers: [alice, S0ONCALL]", "approvers: [alcie, S0ONCALL]",
                 "apps.myapp.approvers[0]", ["`alcie` names nobody", "did you mean `alice`?"],
                 "approvers:", id="approver-names-nobody"),
    pytest.param("operators: [U0CAROL]", "operators: [carol]", "apps.myapp.operators[0]",
                 ["`carol` names nobody", "`people:`"], "operators:",
                 id="operator-names-nobody"),
    pytest.param("approvers: [alice, S0ONCALL]", "approvers: []", "apps.myapp.approvers",
                 ["a production app with no approvers", "four-eyes"], "approvers:",
                 id="production-without-approvers"),
    pytest.param("    approvers: [alice, S0ONCALL]\n", "", "apps.myapp.approvers",
                 ["a production app with no approvers"], "myapp:",
                 id="production-approvers-omitted"),
    pytest.param("approvers: [alice, S0ONCALL]", "approvers: [U0CAROL]", "apps.myapp.approvers",
                 ["four-eyes needs two people"], "approvers:", id="four-eyes-one-person"),
    pytest.param("    environment: production\n", "", "apps.myapp.approvers",
                 ["four-eyes needs two people"], "approvers: [U0CAROL]",
                 id="omitted-environment-is-production"),
    pytest.param("auto_rollback: false", 'auto_rollback: "yes"', "apps.myapp.auto_rollback",
                 ["'yes' is not true or false", "without quotes"], "auto_rollback",
                 id="auto-rollback-string"),
    pytest.param("auto_rollback: false", "auto_rolback: true", "apps.myapp.auto_rolback",
                 ["unknown key `auto_rolback`", "did you mean `auto_rollback`?"],
                 "auto_rolback", id="auto-rollback-typo-key"),
    pytest.param("auto_rollback: false", "auto_rollback: true", "apps.myapp.auto_rollback",
                 ["refused for production"], "auto_rollback", id="auto-rollback-production"),
    pytest.param("database: {run_on: web1}", "database: {run_on: web9}",
                 "apps.myapp.database.run_on", ["`web9` is not one of this app's hosts"],
                 "run_on", id="run-on-unknown-host"),
    pytest.param("people:", "environments: {production: [production], non_prod: [qa]}\npeople:",
                 "environments.non_prod", ["unknown key `non_prod`",
                 "did you mean `non_production`?"], "environments:", id="environments-typo"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "key", "words", "marker"), STRICT)
def test_a_protection_is_never_weakened_by_a_typo(
    tmp_path: Path, old: str, new: str, key: str, words: list[str], marker: str
) -> None:
    text = GOOD.replace(old, new, 1)
    if "U0CAROL]" in marker:
        text = text.replace("approvers: [alice, S0ONCALL]", "approvers: [U0CAROL]")
    assert text != GOOD
    result = run(tmp_path, text)
    assert result.returncode == 1, result.stdout + result.stderr
    wanted = f"apps.yaml:{line_of(text, marker)}: {key}: "
    rows = [row for row in result.stdout.splitlines() if wanted in row]
    assert rows, f"{wanted!r} not in:\n{result.stdout}"
    for word in words:
        assert word in rows[0], rows[0]
    assert "✓" not in result.stdout


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_what_check_refuses(tmp_path: Path, command: str) -> None:
    result = run(tmp_path, edited("environment: production", "environment: prodution"), command)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "apps.myapp.environment: unknown environment `prodution`" in result.stderr
    assert "did you mean `production`?" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_run_lists_every_problem(tmp_path: Path) -> None:
    """An unknown key, a bad run_on and a bad environment: all three in one `check`."""
    text = (
        GOOD.replace("environment: production", "environment: prodution")
        .replace("database: {run_on: web1}", "database: {run_on: web9}")
        .replace("service: myapp}", "service: myapp, servce: x}")
    )
    result = run(tmp_path, text)
    assert result.returncode == 1
    assert "✗ 3 problem(s):" in result.stdout, result.stdout
    for key, words in [
        ("apps.myapp.environment", "did you mean `production`?"),
        ("apps.myapp.deploy.servce", "did you mean `service`?"),
        ("apps.myapp.database.run_on", "`web9` is not one of this app's hosts"),
    ]:
        assert any(key in row and words in row for row in result.stdout.splitlines()), key


def test_environment_names_are_listed_once_and_may_be_replaced(tmp_path: Path) -> None:
    # `rewind check` once per kind (a process each is slow); every name through the same loader.
    for i, name in enumerate(PRODUCTION_ENVIRONMENTS):
        text = edited("environment: production", f"environment: {name.upper()}")
        (tmp_path / "apps.yaml").write_text(text)
        if i == 0:
            assert run(tmp_path, text).returncode == 0, name
        assert load_apps(tmp_path / "apps.yaml").apps["myapp"].production, name
    staging = GOOD.replace("auto_rollback: false", "auto_rollback: true")
    for i, name in enumerate(NON_PRODUCTION_ENVIRONMENTS):
        text = staging.replace("environment: production", f"environment: {name}")
        (tmp_path / "apps.yaml").write_text(text)
        if i == 0:
            assert run(tmp_path, text).returncode == 0, name
        assert not load_apps(tmp_path / "apps.yaml").apps["myapp"].production, name
    own = "environments: {production: [prd], non_production: [stg]}\npeople:"
    text = edited("people:", own).replace("environment: production", "environment: prd")
    assert run(tmp_path, text).returncode == 0
    assert load_apps(tmp_path / "apps.yaml").apps["myapp"].production
    result = run(tmp_path, text.replace("environment: prd", "environment: staging"))
    assert result.returncode == 1  # the file's own list replaces the defaults
    assert "unknown environment `staging`" in result.stdout
    both = edited("people:", "environments: {non_production: [qa, prod]}\npeople:")
    result = run(tmp_path, both)
    assert result.returncode == 1
    assert "environments.non_production: named both production and not: prod" in result.stdout


# ---- YAML syntax, as a compiler reports it ---------------------------------------------------


def test_an_unclosed_bracket_is_reported_where_it_was_opened(tmp_path: Path) -> None:
    text = edited("operators: [U0CAROL]", "operators: [U0CAROL")
    result = run(tmp_path, text)
    assert result.returncode == 1
    line = line_of(text, "operators: [U0CAROL")
    column = text.splitlines()[line - 1].index("[") + 1
    out = result.stdout
    assert f"apps.yaml:{line}:{column}: YAML syntax: unclosed `[` opened here" in out
    assert f"      {line} |     operators: [U0CAROL\n" in out  # the line shown, a caret under `[`
    assert f"\n      {' ' * len(str(line))} | {' ' * (column - 1)}^" in out, out
    assert "close it with `]`" in out
    assert "while parsing" not in out  # no raw parser text


def test_a_tab_and_a_stray_indent_are_named_at_their_line(tmp_path: Path) -> None:
    tab = run(tmp_path, edited("    repo:", "\trepo:"))
    assert "apps.yaml:4:1: YAML syntax: a tab in the indentation" in tab.stdout
    assert "indent with spaces only" in tab.stdout
    stray = run(tmp_path, edited("    repo:", "     repo:"))
    assert stray.returncode == 1
    assert "apps.yaml:4:" in stray.stdout and "indent this key like its siblings" in stray.stdout
    colon = run(tmp_path, edited("    repo: /tmp/myapp.git", "    repo /tmp/myapp.git"))
    assert "apps.yaml:4:5: YAML syntax: a key without `:`" in colon.stdout, colon.stdout


def test_a_key_given_twice_is_an_error_not_the_last_one_winning(tmp_path: Path) -> None:
    text = edited("    auto_rollback: false\n", "    auto_rollback: false\n    environment: dev\n")
    result = run(tmp_path, text)
    assert result.returncode == 1
    wanted = f"apps.yaml:{line_of(text, 'environment: dev')}: apps.myapp.environment: "
    assert wanted + "`environment` is given twice (first on line 3)" in result.stdout


# ---- what the reading decides ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("environments", "environment"),
    [("", "LIVE"), ("environments: {production: [prd], non_production: [stg]}\n", "prd")],
)
def test_a_production_name_keeps_four_eyes_at_the_terminal(
    tmp_path: Path, environments: str, environment: str
) -> None:
    """`live` (a default production name) and a name of the file's own list are production:
    `rollback --yes` may not answer the approvals by itself."""
    text = edited("environment: production", f"environment: {environment}")
    text = text.replace("people:", environments + "people:")
    assert run(tmp_path, text).returncode == 0
    path = tmp_path / "apps.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    env |= {
        "REWIND_CONFIG": str(path),
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "rollback", "myapp", "v1", "--yes", "--break-glass",
         "--reason", "checkout fails"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "--yes cannot be used for myapp: it is production" in result.stdout + result.stderr


def test_an_incident_keeps_the_reading_it_was_opened_with() -> None:
    def incident(environment: str, production_env: bool | None) -> Incident:
        return Incident(
            id="a1", app="myapp", environment=environment, requested_version=None,
            requested_by="U0CAROL", steps=[], production_env=production_env,
        )  # fmt: skip

    assert incident("prd", True).production  # the file's own production name
    assert not incident("stg", False).production
    # A record stored before the reading was kept: production unless a known non-production name.
    assert incident("live", None).production
    assert incident("prodution", None).production
    assert not incident("staging", None).production
