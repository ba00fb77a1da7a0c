"""The kubernetes strategy: kubectl run on the host the apps file names, against a stand-in
`kubectl` (tests/shims) that refuses any argument it does not expect and records every call."""

from __future__ import annotations

import os
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config.apps_file import parse_apps
from bot.steps import redeploy, verify
from bot.steps.database import commands
from bot.workflow.errors import HostError
from bot.workflow.facts import RedeployFacts
from bot.workflow.model import Criterion, StepId
from runners import templates
from runners.local import LocalRunner
from runners.strategies import strategy
from tests.fakes import RecordingNotifier, make_apps, make_ctx, make_incident

SHIMS = Path(__file__).resolve().parent / "shims"
KUBECTL = "kubectl --namespace shop"


def kube_app(tmp_path: Path) -> dict[str, Any]:
    for name in ("kube1", "web1"):
        (tmp_path / name).mkdir()
    return {
        "environment": "staging",
        "repo": str(tmp_path / "repo"),
        "incident_channel": "C0INCIDENT",
        "operators": ["U0CAROL"],
        "approvers": ["U0ALICE"],
        "ssh": {"transport": "local"},
        "hosts": [
            {"name": "kube1", "address": "127.0.0.1", "workdir": str(tmp_path / "kube1")},
            {"name": "web1", "address": "127.0.0.1", "workdir": str(tmp_path / "web1")},
        ],
        "deploy": {
            "strategy": "kubernetes",
            "workdir": str(tmp_path / "kube1"),
            "service": "myapp",
            "image": "registry.example/acme/myapp",
            "namespace": "shop",
            "run_on": "kube1",
        },
        "health": [{"url": "http://127.0.0.1:9/healthz", "status": 200}],
    }


def runner(apps: Any) -> LocalRunner:
    return LocalRunner(apps.apps["myapp"], env={"PATH": f"{SHIMS}:{os.environ['PATH']}"})


def calls(workdir: Path) -> list[str]:
    path = workdir / ".shim-calls"
    return path.read_text().splitlines() if path.exists() else []


async def test_redeploy_sets_the_image_on_the_named_host_only(tmp_path: Path) -> None:
    apps = make_apps(kube_app(tmp_path))
    kube = tmp_path / "kube1"
    (kube / ".kube-image").write_text("registry.example/acme/myapp:v1.5.0\n")
    notifier = RecordingNotifier()
    ctx = make_ctx(apps, runner(apps), step=StepId.REDEPLOY, notifier=notifier)

    outcome = await redeploy.run(ctx)

    assert outcome.criteria == {Criterion.DEPLOYED: True}
    assert isinstance(outcome.facts, RedeployFacts)
    assert list(outcome.hosts) == ["kube1"]  # kubectl runs on run_on, not on every host
    *rollout, logs_read = calls(kube)
    assert rollout == [
        f"{KUBECTL} set image deployment/myapp myapp=registry.example/acme/myapp:v1.4.2",
        f"{KUBECTL} rollout status deployment/myapp --timeout=300s",
        f"{KUBECTL} get deployment/myapp -o 'jsonpath={{.spec.template.spec.containers[0].image}}'",
    ]
    # Then its logs since the restart, read as it came back (the app-wide health URL is Verify's).
    assert logs_read.startswith(f"{KUBECTL} logs deployment/myapp --all-containers --since-time=")
    assert [c.kind for c in outcome.facts.verified["kube1"].checks] == ["logs"]
    assert calls(tmp_path / "web1") == []
    assert outcome.facts.versions_by_host == {"kube1": "registry.example/acme/myapp:v1.4.2"}
    assert 'deployment "myapp" successfully rolled out' in notifier.output_of("kube1")


async def test_a_rollout_that_did_not_take_is_caught(tmp_path: Path) -> None:
    apps = make_apps(kube_app(tmp_path))
    kube = tmp_path / "kube1"
    (kube / ".kube-image").write_text("registry.example/acme/myapp:v1.5.0\n")
    (kube / ".kube-stuck").touch()
    ctx = make_ctx(apps, runner(apps), step=StepId.REDEPLOY)
    with pytest.raises(HostError, match=r"runs registry.example/acme/myapp:v1.5.0, not the tag"):
        await redeploy.run(ctx)


async def test_a_hostile_version_never_reaches_kubectl(tmp_path: Path) -> None:
    apps = make_apps(kube_app(tmp_path))
    incident = make_incident(requested_version="v1;rm", facts={"assess": {"target": "v1;rm"}})
    ctx = make_ctx(apps, runner(apps), step=StepId.REDEPLOY, incident=incident)
    with pytest.raises(HostError, match="not a valid version"):
        await redeploy.run(ctx)
    assert calls(tmp_path / "kube1") == []


async def test_logs_since_and_undo(tmp_path: Path) -> None:
    apps = make_apps(kube_app(tmp_path))
    app = apps.apps["myapp"]
    kube = tmp_path / "kube1"
    (kube / ".kube-logs").write_text("2026-11-29T03:00:01Z ERROR boom\n")
    at = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    cmd = verify.logs_command(app, app.host("kube1"), at, 3600)
    assert cmd is not None and "--since-time=2026-11-29T03:00:00.000000Z" in cmd
    run = runner(apps)
    result = await run.run("kube1", cmd)
    assert result.ok and "ERROR boom" in result.output
    (kube / ".kube-image").write_text("registry.example/acme/myapp:v1.5.0\n")
    (kube / ".kube-image.prev").write_text("registry.example/acme/myapp:v1.4.2\n")
    undo = templates.build(app, app.host("kube1"), "undo")
    assert undo is not None and undo.endswith(f"{KUBECTL} rollout undo deployment/myapp")
    assert (await run.run("kube1", undo)).ok
    assert (kube / ".kube-image").read_text().strip().endswith(":v1.4.2")
    assert shlex.split(calls(kube)[-1]) == [
        "kubectl", "--namespace", "shop", "rollout", "undo", "deployment/myapp"
    ]  # fmt: skip


def test_the_strategy_says_what_a_redeploy_needs() -> None:
    k8s = strategy("kubernetes")
    assert k8s.dependency_file is None and k8s.head_command is None
    assert k8s.off_target("r/myapp:v1.4.2", "", "abc", "v1.4.2") == ""
    assert "not the tag v1.4.2" in k8s.off_target("r/myapp:v1.4.20", "", "", "v1.4.2")
    assert strategy("systemd").dependency_file == "requirements.txt"
    assert strategy("docker-compose").dependency_file is None


def test_a_groups_kubernetes_owner_downgrades_after_its_redeploy_where_its_alembic_runs(
    tmp_path: Path,
) -> None:
    """In a release group, the shared database's owner deployed by kubernetes has no copy of the
    version rolled back from, and needs none: its redeploy sets an image in the cluster and
    moves no file where its alembic runs. Its downgrade comes after that redeploy, in the
    workdir, with the usual commands (a workdir whose alembic no longer knows the revision stops
    the step when it reads `alembic current`)."""
    from bot.steps.database import downgrade
    from bot.workflow.machine import new_steps
    from bot.workflow.model import StepStatus

    data = kube_app(tmp_path)
    data["database"] = {"run_on": "web1", "alembic": "alembic -c alembic.ini", "name": "shopdb"}
    apps = parse_apps({"apps": {"myapp": data}}, "test")
    order = [s.id for s in new_steps()]
    order.remove(StepId.DB_ROLLBACK)
    order.insert(order.index(StepId.REDEPLOY) + 1, StepId.DB_ROLLBACK)  # as its group stores it
    steps = {s.id: s for s in new_steps()}
    incident = make_incident(steps=[steps[s] for s in order])
    incident.step(StepId.REDEPLOY).status = StepStatus.SUCCEEDED
    ctx = make_ctx(apps, runner(apps), step=StepId.DB_ROLLBACK, incident=incident)
    db = apps.apps["myapp"].database
    assert db is not None
    assert downgrade._after_redeploy(ctx, db) is None  # in the workdir, as before a redeploy
    script = commands.downgrade_script(apps.apps["myapp"], db, "b2c3d4e5f6a1")
    assert [line.name for line in script] == ["current", "downgrade", "after"]
    assert all(f"cd {tmp_path / 'web1'}" in line.command for line in script)
