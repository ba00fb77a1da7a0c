"""A version rolled back from: CI may not deploy it again until an approver releases it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Quarantine(BaseModel):
    app: str
    version: str
    by: str  # who asked for the rollback
    reason: str
    incident: str
    link: str = ""
    at: datetime
