"""How the app did before a deploy: what a watch compares with, and what a rollback aims back to."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Baseline(BaseModel):
    """Figures of the version before the deploy (a watch that ended quiet measured them)."""

    version: str
    measured_at: datetime
    probes: int = 0
    availability: float | None = None  # percent
    p95_ms: float | None = None
    errors_per_minute: float | None = None
    # When the deploy being rolled back was made: metrics are read then for their value
    # "before the bad deploy". A baseline with no probes carries only this time.
    deployed_at: datetime | None = None

    def p95_text(self) -> str:
        return "n/a" if self.p95_ms is None else f"{self.p95_ms:.0f} ms"

    def availability_text(self) -> str:
        return "n/a" if self.availability is None else f"{self.availability:g} %"


def compare(baseline: Baseline | None, p95_ms: float | None, availability: float | None) -> str:
    """'p95 38 ms; before the bad deploy 35 ms (v1.4.2). Availability 100 %; before 100 %.'"""
    if baseline is None or not baseline.probes:
        return ""  # nothing measured before the deploy (only its time is known)
    p95 = "n/a" if p95_ms is None else f"{p95_ms:.0f} ms"
    avail = "n/a" if availability is None else f"{availability:g} %"
    return (
        f"p95 {p95}; before the bad deploy {baseline.p95_text()} ({baseline.version}). "
        f"Availability {avail}; before {baseline.availability_text()}."
    )
