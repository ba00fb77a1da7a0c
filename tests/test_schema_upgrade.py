"""Upgrading Rewind mid-incident: an incident stored by the previous schema version (1: every
fact in one flat dict, no `schema_version`) is approved and completed by the new code.

The incident is run to the database approval for real (hosts, database, Slack fake), then its
stored JSON is rewritten in Redis to the shape version 1 had (as `tests/data/incident_v1.json`,
written by that code), as if the old Rewind had written it and been upgraded while it waited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.workflow.schema import _V1_SLOTS, _V1_TOP, CURRENT
from tests.fixtures_hosts import SshEnv
from tests.test_worker_crash import counting_app, runs
from tests.test_workflow_e2e import db_revision, start

V1_KEYS = set(json.loads((Path(__file__).parent / "data" / "incident_v1.json").read_text()))


def as_v1(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON version 1 stored for this incident: facts flat, no schema_version."""
    facts = data["facts"]
    flat: dict[str, Any] = {}
    for slot, keys in _V1_SLOTS.items():
        for old, new in keys.items():
            value = (facts.get(slot) or {}).get(new)
            if value is not None and value != [] and value != {}:
                flat[old] = value
    if facts.get("monitor"):
        flat["monitor"] = facts["monitor"]
    for key in _V1_TOP:
        if facts.get(key) is not None:
            flat[key] = facts[key]
    old = {k: v for k, v in data.items() if k in V1_KEYS}
    return {**old, "facts": flat}


async def test_an_incident_stored_by_the_previous_schema_completes_under_the_new_code(
    make_bot: Any, ssh_env_migrated: SshEnv, tmp_path: Path
) -> None:
    env = ssh_env_migrated
    cfg, count = counting_app(env, tmp_path)
    async with make_bot({"myapp": cfg}) as bot:
        await start(bot)
        await bot.click(await bot.gate("Roll back"), "Roll back", "U0CAROL")
        approval = await bot.gate("Approve downgrade", timeout=90)

        incident = await bot.incident()
        key = f"rewind:incident:{incident.id}"
        stored = json.loads(await bot.runtime.store.r.get(key))
        assert stored["schema_version"] == CURRENT
        old = as_v1(stored)
        assert "schema_version" not in old and "db_backup" in old["facts"]
        assert "hotfix_sha" in old["facts"] and "target" in old["facts"]
        await bot.runtime.store.r.set(key, json.dumps(old))

        await bot.click(approval, "Approve downgrade", "U0ALICE")
        done = await bot.wait_status("completed", timeout=120)
        assert done.schema_version == CURRENT
        assert done.facts.code.hotfix_sha == incident.facts.code.hotfix_sha  # facts carried over
        assert runs(count) == 1
        assert env.db_url and db_revision(env.db_url) == "b2c3d4e5f6a1"
        for host in env.hosts:
            assert host.run("git rev-parse HEAD").strip() == done.facts.code.hotfix_sha
        upgraded = json.loads(await bot.runtime.store.r.get(key))
        assert upgraded["schema_version"] == CURRENT and "code" in upgraded["facts"]
