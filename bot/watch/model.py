"""A watch: one reported deploy looked at for `watch.duration`, as JSON in Redis.

Every tick is appended here before the next one is scheduled, so any worker can take the next
tick: a worker that dies mid-watch loses at most the tick it was running.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from bot.watch.deploys import Deploy
from bot.workflow.baseline import Baseline
from bot.workflow.facts import SignalFact
from bot.workflow.model import ThreadRef, utcnow


class WatchState(StrEnum):
    WATCHING = "watching"
    PROPOSED = "proposed"  # thresholds crossed; the proposal waits for a click
    ROLLING_BACK = "rolling_back"  # someone (or auto_rollback) opened the incident
    DISMISSED = "dismissed"
    QUIET = "quiet"  # the whole duration passed within the thresholds
    SUPERSEDED = "superseded"  # a newer deploy of the app started its own watch

    @property
    def ticking(self) -> bool:
        return self is WatchState.WATCHING


class Sample(BaseModel):
    """One health probe of one URL."""

    url: str
    host: str | None = None
    ok: bool
    status: int | None = None
    latency_ms: float | None = None  # None: no answer
    detail: str = ""


class Tick(BaseModel):
    n: int
    at: datetime
    worker: str
    samples: list[Sample] = Field(default_factory=list)
    # error lines since the deploy, per host, as the logs showed them at this tick
    errors: dict[str, int] = Field(default_factory=dict)
    log_problems: dict[str, str] = Field(default_factory=dict)
    # the app's `metrics:` as read at this tick, each with its value before the deploy, and
    # each host's `resources:` (read over the runner the logs use), when set
    signals: list[SignalFact] = Field(default_factory=list)


class Answer(BaseModel):
    """What became of the proposal: who clicked what, and why."""

    choice: str  # roll_back | dismiss | auto
    user: str
    at: datetime = Field(default_factory=utcnow)
    why: str = ""
    incident: str | None = None


class Watch(BaseModel):
    id: str
    deploy: Deploy
    started_at: datetime = Field(default_factory=utcnow)
    duration: float
    interval: float
    baseline: Baseline | None = None
    last_good: str | None = None
    state: WatchState = WatchState.WATCHING
    ticks: list[Tick] = Field(default_factory=list)
    utc_offsets: dict[str, int] = Field(default_factory=dict)  # per host, for log timestamps
    first_failure_at: datetime | None = None  # first failed probe or signal (bench: to proposal)
    proposed_at: datetime | None = None
    evidence: str = ""  # the reason the proposal gives, in plain words
    message: ThreadRef | None = None  # the proposal in the incident channel
    answer: Answer | None = None
    # Its deploy was part of a release (same `release` id) of apps of this group: the proposal
    # rolls the group back; `release_apps` are the group's apps that release deployed.
    group: str = ""
    release_apps: list[str] = Field(default_factory=list)
    pins: dict[str, str] = Field(default_factory=dict)  # app -> the version before the release
    version: int = 0  # bumped on every save; a stale write is refused

    @property
    def app(self) -> str:
        return self.deploy.app

    def due(self, n: int) -> float:
        """When tick `n` is due, as a UNIX time."""
        return self.started_at.timestamp() + n * self.interval

    @property
    def ticks_planned(self) -> int:
        return int(self.duration // self.interval) + 1
