"""`python -m bot export INCIDENT`: the whole record of one incident, as JSON, for audits.

Closed incidents leave Redis after REWIND_RETENTION; this is how their record is kept longer
(the Markdown report stays in git regardless).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, TextIO

from bot.config.settings import Settings
from bot.workflow.errors import StoreError


async def export(settings: Settings, incident_id: str) -> dict[str, Any] | None:
    from bot.store.stores import open_store

    stores = open_store(settings.redis_url, retention=settings.retention)
    store = stores.incidents
    try:
        incident = await store.load(incident_id)
        if incident is None:
            return None
        return {
            "incident": incident.model_dump(mode="json"),
            "timeline": await store.timeline(incident_id),
            "expires_in_seconds": await store.expires_in(incident_id),
        }
    finally:
        await stores.aclose()


async def run_export(settings: Settings, incident_id: str, out: TextIO = sys.stdout) -> int:
    try:
        record = await asyncio.wait_for(export(settings, incident_id), 30)
    except (TimeoutError, OSError, StoreError) as exc:
        reason = exc or "timeout"
        print(f"rewind: Redis did not answer ({reason}); nothing exported", file=sys.stderr)
        return 1
    if record is None:
        print(
            f"rewind: no incident `{incident_id}` in Redis (closed incidents are kept for "
            "REWIND_RETENTION; the report in the incidents directory stays)",
            file=sys.stderr,
        )
        return 1
    json.dump(record, out, indent=2, ensure_ascii=False)
    out.write("\n")
    return 0
