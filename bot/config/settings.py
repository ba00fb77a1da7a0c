"""One settings object, built at start-up from the environment (names per CONTRACT)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.config.paths import absolute
from bot.workflow.errors import StartupError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    # Not in the repr: the URL may carry Redis's password.
    redis_url: str = Field(default="redis://localhost:6379/0", alias="REDIS_URL", repr=False)
    config_path: Path = Field(
        default=Path("config/apps.yaml"), validation_alias=AliasChoices("REWIND_CONFIG")
    )
    port: int = Field(default=3000, alias="PORT")
    metrics_port: int = Field(default=9300, alias="METRICS_PORT")
    log_format: Literal["text", "json"] = Field(default="text", alias="LOG_FORMAT")
    log_level: Literal["info", "debug"] = Field(default="info", alias="LOG_LEVEL")
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
    # First retry delay of an outgoing webhook; each next one waits 4 times longer (4 tries).
    webhook_backoff: float = Field(
        default=1.0, validation_alias=AliasChoices("REWIND_WEBHOOK_BACKOFF")
    )
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
        from bot.config.apps_file import parse_duration

        return parse_duration(v)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("config_path", "workspace", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return absolute(value)

    def token(self) -> str:
        if self.slack_bot_token is None:
            raise StartupError(
                "SLACK_BOT_TOKEN is not set: the bot token (xoxb-…, on the Slack app's OAuth & "
                "Permissions page) is needed to post in Slack."
            )
        return self.slack_bot_token.get_secret_value()

    def secret_values(self) -> list[str]:
        """Every secret this process knows, to keep out of logs and /metrics."""
        values = [
            v.get_secret_value()
            for name in type(self).model_fields
            if isinstance(v := getattr(self, name), SecretStr)
        ]
        password = urlsplit(self.redis_url).password
        return [v for v in [*values, password or ""] if v]
