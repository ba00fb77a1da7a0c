"""The apps file's `groups:` (issue 22) is read strictly, like every protection: an unknown app
("did you mean"), an app twice, an empty group, a group named like an app or a `/rollback`
command are errors in `rewind check`, `serve` and `worker`, each at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.apps_file import load_apps
from bot.workflow.group import (
    Member,
    downgrade_due,
    downgrades,
    shared_with,
    step_order,
    unnamed_not_last,
    when_words,
)
from bot.workflow.model import StepId
from bot.workflow.steps import ORDER
from tests.test_config_strict import line_of, run

APP = """\
  {name}:
    environment: {env}
    repo: /tmp/{name}.git
    incident_channel: C0INCIDENT
    operators: [U0CAROL]
    approvers: [U0ALICE, U0BOB]
    ssh: {{transport: local}}
    hosts:
      - {{name: web1, address: 10.0.0.11}}
    deploy: {{strategy: systemd, workdir: /srv/{name}, service: {name}}}
    database: {{run_on: web1, name: shopdb}}
"""
GOOD = (
    "apps:\n"
    + APP.format(name="storefront", env="production")
    + APP.format(name="api", env="production")
    + APP.format(name="worker", env="staging")
    + "groups:\n  shop: [storefront, api, worker]\n"
)


def test_a_group_is_read_in_its_order_with_its_shared_database(tmp_path: Path) -> None:
    result = run(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    apps = load_apps(tmp_path / "apps.yaml")
    group = apps.group("shop")
    assert group is not None
    assert [a.name for a in group] == ["storefront", "api", "worker"]
    assert apps.group("storefront") is None
    (down,) = downgrades(apps.group_members("shop"))
    assert (down.database, down.owner) == ("shopdb", "worker")
    assert down.after == ("storefront", "api", "worker")  # its own redeploy too


BAD = [
    pytest.param("shop: [storefront, api, worker]", "shop: [storefront, apii, worker]",
                 "groups.shop[1]", ["`apii` is not an app", "did you mean `api`?"],
                 id="unknown-app"),
    pytest.param("shop: [storefront, api, worker]", "shop: [storefront, api, storefront]",
                 "groups.shop[2]", ["`storefront` is listed twice"], id="app-twice"),
    pytest.param("shop: [storefront, api, worker]", "shop: []", "groups.shop",
                 ["an empty group"], id="empty"),
    pytest.param("shop: [storefront, api, worker]", "api: [storefront, worker]", "groups.api",
                 ["`api` is also an app"], id="clashes-with-app"),
    pytest.param("shop: [storefront, api, worker]", "status: [storefront, api]",
                 "groups.status", ["`status` is a `/rollback` command"], id="subcommand"),
    pytest.param("shop: [storefront, api, worker]", "shop: storefront", "groups.shop",
                 ["valid list"], id="not-a-list"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "key", "words"), BAD)
def test_a_bad_group_is_named_at_its_line(
    tmp_path: Path, old: str, new: str, key: str, words: list[str]
) -> None:
    text = GOOD.replace(old, new)
    result = run(tmp_path, text)
    assert result.returncode == 1, result.stdout + result.stderr
    wanted = f"apps.yaml:{line_of(text, new)}: {key}: "
    rows = [row for row in result.stdout.splitlines() if wanted in row]
    assert rows, f"{wanted!r} not in:\n{result.stdout}"
    for word in words:
        assert word in rows[0], rows[0]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_a_bad_group(tmp_path: Path, command: str) -> None:
    text = GOOD.replace("[storefront, api, worker]", "[storefront, apii]")
    result = run(tmp_path, text, command)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "groups.shop[1]: `apii` is not an app of this file" in result.stderr
    assert "Traceback" not in result.stderr


def test_each_database_waits_for_every_app_that_uses_it() -> None:
    named = [Member("web", True, "shop"), Member("api", True, "shop"),
             Member("jobs", True, "jobs"), Member("cdn"), Member("last", True)]  # fmt: skip
    shop, jobs, last = downgrades(named)
    # The last user owns it: downgraded once, after every user is redeployed, its own too.
    assert (shop.owner, shop.after) == ("api", ("web", "api"))
    assert (jobs.owner, jobs.after) == ("jobs", ("jobs",))
    assert not downgrade_due(shop, ["web"]) and downgrade_due(shop, ["web", "api"])
    assert shared_with(named, "web") == "api" and shared_with(named, "api") is None
    # A database without a name: the strict reading, every member is redeployed first.
    assert last.after == ("web", "api", "jobs", "cdn", "last")
    assert unnamed_not_last(named) == []
    assert unnamed_not_last([Member("a", True), Member("b")]) == ["a"]


def test_an_unnamed_database_that_is_not_last_is_an_error(tmp_path: Path) -> None:
    text = GOOD.replace("database: {run_on: web1, name: shopdb}", "database: {run_on: web1}")
    result = run(tmp_path, text)
    assert result.returncode == 1
    row = next(r for r in result.stdout.splitlines() if "groups.shop[0]" in r)
    assert "`storefront` has a database without a name and is not last" in row
    assert "give it `database.name`" in row


def test_a_database_app_that_keeps_releases_downgrades_after_its_own_redeploy() -> None:
    kept = [Member("web", True, "shop"), Member("api", True, "shop", keeps_releases=True)]
    (down,) = downgrades(kept)
    # api keeps the release it is rolled back from: its own redeploy comes first too.
    assert (down.owner, down.after) == ("api", ("web", "api"))
    steps = step_order(ORDER, down)
    assert steps.index(StepId.DB_PREPARE) < steps.index(StepId.REDEPLOY)
    assert steps.index(StepId.REDEPLOY) + 1 == steps.index(StepId.DB_ROLLBACK)
    assert steps.index(StepId.DB_ROLLBACK) < steps.index(StepId.VERIFY)
    # Without kept releases but from a git checkout: after api's own redeploy too, in a scratch
    # copy of the deployed commit.
    plain = [Member("web", True, "shop"), Member("api", True, "shop", checkout=True)]
    (copied,) = downgrades(plain)
    assert (copied.after, copied.scratch) == (("web", "api"), True)
    assert step_order(ORDER, copied) == steps
    assert not downgrades([*kept[:1], Member("api", True, "shop", True, True)])[0].scratch
    # Neither (no checkout: kubernetes): after api's own redeploy too, where its alembic runs,
    # which that redeploy (a new image in the cluster) leaves alone.
    bare = [Member("web", True, "shop"), Member("api", True, "shop")]
    (in_place,) = downgrades(bare)
    assert in_place.after == ("web", "api")
    assert (in_place.scratch, in_place.in_place) == (False, True)
    assert step_order(ORDER, in_place) == steps
    said = when_words(in_place)
    assert "downgraded once, after `web` and `api` are redeployed" in said
    assert "which its redeploy does not change" in said


# `worker` deployed by kubernetes: no releases, no checkout to copy the deployed version from.
KUBE = GOOD.replace(
    "deploy: {strategy: systemd, workdir: /srv/worker, service: worker}",
    "deploy: {strategy: kubernetes, workdir: /srv/worker, service: worker, image: r/worker}",
)


def test_rewind_check_passes_a_shared_database_of_an_app_without_a_checkout(tmp_path: Path) -> None:
    """`rewind check`, run as a person runs it: a shared database's app deployed by kubernetes
    is downgraded after its redeploy like the others, so there is nothing to warn of."""
    from tests.test_config_strict import run

    done = run(tmp_path, KUBE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "⚠" not in done.stdout and "✓ all well" in done.stdout, done.stdout
    done = run(tmp_path, GOOD)  # from a git checkout: nothing to warn about
    assert done.returncode == 0 and "⚠" not in done.stdout, done.stdout
