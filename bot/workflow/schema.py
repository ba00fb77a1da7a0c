"""The stored incident's schema version, and the migrations that bring old JSON up to date.

Incidents live in Redis across upgrades: whatever an older Rewind wrote must still load. Each
migration takes the JSON of version N (a dict) to N + 1; `load_incident` applies them in order.
To change the stored shape: bump `CURRENT`, add `MIGRATIONS[CURRENT - 1]`, and test it with a
JSON the old code really wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from bot.workflow.model import Incident

CURRENT = 3
Json = dict[str, Any]

# Version 1 kept every fact in one flat dict; version 2 keeps one model per step.
_V1_SLOTS: dict[str, dict[str, str]] = {
    "prerequisites": {k: k for k in ("notified_start", "notices_held", "policy")},
    "assess": {
        k: k
        for k in (
            "deployed",
            "deployed_by_host",
            "deployed_sha",
            "target",
            "target_sha",
            "commits",
            "commit_count",
            "git_log",
            "merges",
            "code_methods",
            "code_method_recommended",
            "code_method_reason",
            "hotfix_branch",
            "db_target_revision",
            "db_current_revision",
            "migrations",
            "irreversible",
            "db_summary",
            "plan_changes",
        )
    },
    "code": {"hotfix_ref": "hotfix_ref", "hotfix_sha": "hotfix_sha", "code_method": "method"},
    "db": {
        f"db_{k}": k
        for k in (
            "backup",
            "backups",
            "restore_default",
            "sql_preview",
            "sql_lines",
            "irreversible",
            "irreversible_revisions",
            "risk",
            "recommended",
            "revision_after",
            "restored",
            "verify",
        )
    },
    "redeploy": {
        "redeploy_ref": "ref",
        **{
            k: k
            for k in (
                "redeployed_hosts",
                "restart_at",
                "host_utc_offset",
                "versions_by_host",
                "dependency_fingerprint",
            )
        },
    },
    "verify": {"verify": "checks", "verify_vs_baseline": "vs_baseline"},
    "report": {
        "report_path": "path",
        "report_commit": "commit",
        "report_pushed": "pushed",
        "postmortem_path": "postmortem_path",
    },
}
_V1_TOP = ("code_method", "restore_backup", "plan", "answered", "waiting")


def _v1_to_v2(data: Json) -> Json:
    flat = data.get("facts") or {}
    facts: Json = {slot: {} for slot in _V1_SLOTS}
    for slot, keys in _V1_SLOTS.items():
        for old, new in keys.items():
            if flat.get(old) is not None:
                facts[slot][new] = flat[old]
    if isinstance(flat.get("monitor"), dict):
        facts["monitor"] = flat["monitor"]
    for key in _V1_TOP:
        if flat.get(key) is not None:
            facts[key] = flat[key]
    if isinstance(facts["db"].get("irreversible_revisions"), bool):
        facts["db"].pop("irreversible_revisions")
    return {**data, "facts": facts}


# Version 2 kept Slack mentions in stored words ("approve by <@U1>", "Aborted by <@U1>. …");
# version 3 keeps the words and the user id apart.
_BY = re.compile(r"^(?P<words>.*?),? (?:chosen )?by <@(?P<user>[A-Z0-9]+)>(?P<rest>.*)$", re.S)
_ENDED = re.compile(r"^(?:Aborted|Cancelled) by <@(?P<user>[A-Z0-9]+)>\.\s*(?P<rest>.*)$", re.S)


def _v2_to_v3(data: Json) -> Json:
    facts = dict(data.get("facts") or {})
    answered: Json = {}
    for token, said in (facts.get("answered") or {}).items():
        m = _BY.match(said) if isinstance(said, str) else None
        answered[token] = (
            {"choice": m["words"], "by": m["user"]} if m else {"choice": str(said), "by": ""}
        )
    facts["answered"] = answered
    steps = []
    for rec in data.get("steps") or []:
        m = _BY.match(rec.get("summary") or "") if rec.get("id") == "decide" else None
        steps.append({**rec, "summary": m["words"] + m["rest"], "by": m["user"]} if m else rec)
    out = {**data, "facts": facts, "steps": steps}
    if m := _ENDED.match(data.get("outcome") or ""):
        out.update(outcome=m["rest"], ended_by=m["user"])
    return out


MIGRATIONS: dict[int, Callable[[Json], Json]] = {1: _v1_to_v2, 2: _v2_to_v3}


def migrate(data: Json) -> Json:
    """`data` (an incident's JSON, any version) brought to `CURRENT`."""
    version = int(data.get("schema_version") or 1)
    while version < CURRENT:
        data = MIGRATIONS[version](data)
        version += 1
    return {**data, "schema_version": version}


def load_incident(raw: str | bytes) -> Incident:
    """An incident from its stored JSON, whichever Rewind wrote it."""
    return Incident.model_validate(migrate(json.loads(raw)))
