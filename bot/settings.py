"""One settings object, built at start-up from the environment (names per CONTRACT)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    redis_url: str = Field(default="redis://localhost:6379/0", alias="REDIS_URL")
    config_path: Path = Field(
        default=Path("config/apps.yaml"), validation_alias=AliasChoices("REWIND_CONFIG")
    )
    port: int = Field(default=3000, alias="PORT")
    api_token: SecretStr | None = Field(default=None, alias="REWIND_API_TOKEN")
    github_webhook_secret: SecretStr | None = Field(default=None, alias="GITHUB_WEBHOOK_SECRET")
    # Where `python -m bot deployed` sends the deploy when it runs away from the bot (CI).
    api_url: str | None = Field(default=None, validation_alias=AliasChoices("REWIND_URL"))
    # Not in the contract, for operators and tests: where the bot keeps its clones, the queue's
    # name, and how fast a dead worker's job is taken over.
    workspace: Path = Field(default=Path("var"), validation_alias=AliasChoices("REWIND_WORKSPACE"))
    queue_name: str = Field(default="rewind", validation_alias=AliasChoices("REWIND_QUEUE"))
    heartbeat: int = Field(default=15, validation_alias=AliasChoices("REWIND_HEARTBEAT"))
    sweep: int = Field(default=5, validation_alias=AliasChoices("REWIND_SWEEP"))
    worker_concurrency: int = Field(default=10, validation_alias=AliasChoices("REWIND_CONCURRENCY"))
    worker_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}",
        validation_alias=AliasChoices("REWIND_WORKER_ID"),
    )

    # How long a closed incident, its audit trail and its keys stay in Redis (reports stay in git).
    retention: float = Field(default=400 * 86400, validation_alias=AliasChoices("REWIND_RETENTION"))
    # How long a worker told to stop (SIGTERM) waits for a step that must not be cut short.
    drain: float = Field(default=600, validation_alias=AliasChoices("REWIND_DRAIN"))

    @field_validator("retention", "drain", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        from bot.apps import parse_duration

        return parse_duration(v)

    def token(self) -> str:
        if self.slack_bot_token is None:
            raise SystemExit("SLACK_BOT_TOKEN is not set: `serve` needs the bot token (xoxb-…).")
        return self.slack_bot_token.get_secret_value()
