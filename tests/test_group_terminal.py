"""`rewind rollback GROUP APP=VERSION …` (issue 22) through the real CLI: every member's version
is taken, and each pin is checked as `/rollback GROUP` checks it in Slack, before anything
starts (no Redis, no host is reached). The group's full run at the terminal, with a version per
app, is in tests/test_group_rollback.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli.demo import demo_config
from bot.cli.main import _versions
from bot.workflow.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _app(tmp_path: Path, name: str) -> dict[str, Any]:
    """The demo's app (local transport), staging, without a database: never reached here."""
    hosts = {f"{name}-1": (tmp_path / name, 1)}
    config = demo_config(tmp_path / name, hosts, tmp_path / f"{name}.git")
    del config["database"]
    return {**config, "environment": "staging"}


@pytest.fixture
def rewind(tmp_path: Path) -> object:
    apps = {name: _app(tmp_path, name) for name in ("storefront", "api", "billing")}
    data = {"apps": apps, "groups": {"shop": ["storefront", "api"]}}
    (tmp_path / "apps.yaml").write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWIND_"))}
    env |= {
        "PYTHONPATH": str(ROOT),
        "REWIND_CONFIG": str(tmp_path / "apps.yaml"),
        "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens: a refusal needs no Redis
        "REWIND_WORKSPACE": str(tmp_path / "ws"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "rollback", *args], env=env, cwd=tmp_path,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    return run


def test_every_members_version_is_taken() -> None:
    assert _versions("shop", ["storefront=v2.3.1", "api=v1.4.2"]) == (
        None,
        (("storefront", Version("v2.3.1")), ("api", Version("v1.4.2"))),
    )
    assert _versions("myapp", ["v1.4.2"]) == (Version("v1.4.2"), ())
    assert _versions("myapp", []) == (None, ())


@pytest.mark.parametrize("plan", [(), ("--plan",)])
def test_each_pin_is_checked_as_in_slack_before_anything_starts(
    rewind: object, plan: tuple[str, ...]
) -> None:
    run = rewind
    assert callable(run)
    cases = {
        # an unknown app, with the member it was probably meant to be
        ("storefornt=v2.3.1", "api=v1.4.2"): "I don't know an app called `storefornt`: did you "
        "mean `storefront`?",
        # a known app that is not in the group
        ("storefront=v2.3.1", "billing=v1.0.0"): "`billing` is not an app of the group `shop` "
        "(`storefront`, `api`)",
        # not a version (shell characters), for the second member too
        ("storefront=v2.3.1", "api=v1;rm"): "`v1;rm` is not a version",
        ("api=v1.4.2", "api=v1.4.3"): "api is given two versions: pick one.",
        ("api=v1.4.2", "v1.4.3"): "'v1.4.3': a group's versions are APP=VERSION each",
    }
    for pins, said in cases.items():
        proc = run("shop", *pins, "--reason", "release 42 broke checkout", *plan)
        out = " ".join(proc.stdout.split())
        assert proc.returncode == 2, (pins, proc.stdout, proc.stderr[-2000:])
        assert out.startswith("✗ ") and said in out, (pins, out)
        assert "Redis" not in out  # refused before anything was reached
    single = run("api", "v1.4.2", "v1.4.3", "--reason", "500s", *plan)
    assert single.returncode == 2 and "One version only" in single.stdout
    app_pins = run("api", "api=v1.4.2", "--reason", "500s", *plan)
    assert app_pins.returncode == 2 and "api is an app, not a group" in app_pins.stdout
