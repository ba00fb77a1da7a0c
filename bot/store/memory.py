"""An in-process store with the same behaviour as Redis: for the demo and the terminal front."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime

from bot.ports import AuditEntry, CompareAndSet, Freeze
from bot.workflow.model import Incident


class MemoryStore(CompareAndSet):
    """`bot.ports.Store` in memory. One process only: the demo has no Redis to install."""

    def __init__(self) -> None:
        self.incidents: dict[str, str] = {}
        self.locks: dict[str, str] = {}
        self.fence = itertools.count(1)
        self.audits: dict[str, list[AuditEntry]] = {}
        self.seen: set[str] = set()
        self.freezes: dict[str, Freeze] = {}
        self.plans: dict[str, str] = {}

    async def create(self, incident: Incident) -> None:
        if not await self.save(incident):
            raise RuntimeError(f"incident {incident.id} exists already")

    async def load(self, incident_id: str) -> Incident | None:
        raw = self.incidents.get(incident_id)
        return Incident.model_validate_json(raw) if raw else None

    async def save(self, incident: Incident) -> bool:
        current = await self.load(incident.id)
        if (current.version if current else 0) != incident.version:
            return False
        incident.version += 1
        self.incidents[incident.id] = incident.model_dump_json()
        if not incident.status.open:  # as in Redis: ended and unlocked in one write
            await self.release_lock(incident.app, incident.id)
        return True

    async def acquire_lock(self, app: str, incident_id: str) -> int | str:
        if app in self.locks:
            return self.locks[app].rsplit(":", 1)[0]
        token = next(self.fence)
        self.locks[app] = f"{incident_id}:{token}"
        return token

    async def acquire_locks(self, holders: list[tuple[str, str]]) -> list[int] | tuple[str, str]:
        for app, _ in holders:
            if app in self.locks:
                return app, self.locks[app].rsplit(":", 1)[0]
        return [int(await self.acquire_lock(app, incident)) for app, incident in holders]

    async def release_lock(self, app: str, incident_id: str) -> None:
        if self.locks.get(app, "").rsplit(":", 1)[0] == incident_id:
            del self.locks[app]

    async def holds_lock(self, app: str, incident_id: str, token: int) -> bool:
        return self.locks.get(app) == f"{incident_id}:{token}"

    async def lock_holder(self, app: str) -> str | None:
        holder = self.locks.get(app)
        return holder.rsplit(":", 1)[0] if holder else None

    async def open_incidents(self) -> list[Incident]:
        return [i for i in await self.recent_incidents(1000) if i.status.open]

    async def recent_incidents(self, limit: int = 20) -> list[Incident]:
        all_ = [Incident.model_validate_json(raw) for raw in self.incidents.values()]
        return sorted(all_, key=lambda i: i.created_at, reverse=True)[:limit]

    async def audit(self, incident_id: str, who: str, what: str, result: str = "") -> None:
        entry = {"at": datetime.now(UTC).isoformat(), "who": who, "what": what, "result": result}
        self.audits.setdefault(incident_id, []).append(entry)

    async def timeline(self, incident_id: str) -> list[AuditEntry]:
        return list(self.audits.get(incident_id, []))

    async def first_time(self, key: str, ttl: int = 3600) -> bool:
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    async def freeze(self, freeze: Freeze) -> None:
        self.freezes[freeze.app] = replace(freeze)

    async def unfreeze(self, app: str) -> Freeze | None:
        return self.freezes.pop(app, None)

    async def frozen(self, app: str) -> Freeze | None:
        return self.freezes.get(app)

    async def save_plan(self, plan_id: str, data: str, ttl: int) -> None:
        self.plans[plan_id] = data

    async def load_plan(self, plan_id: str) -> str | None:
        return self.plans.get(plan_id)

    async def ping(self) -> bool:
        return True
