"""Deploys reported by CI: the report, its checks, and GitHub's `deployment_status` webhook.

Pure: no HTTP, no Redis. The web process (`bot.app.api`) and `python -m bot deployed` both turn what
they received into a `DeployReport`, checked here exactly as `/rollback` checks its input.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.config.apps_file import AppConfig, AppsFile
from bot.workflow.errors import UserFacingError
from bot.workflow.model import utcnow
from bot.workflow.version import is_version

_URL = re.compile(r"^https?://[^\s]{1,2000}$")
_WHO = re.compile(r"^[^\x00-\x1f<>`*]{1,100}$")


class DeployReport(BaseModel):
    """`POST /api/deploys`: `{"app", "version", "environment"?, "by"?, "url"?, "release"?}`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    app: str = Field(min_length=1, max_length=100)
    version: str = Field(min_length=1, max_length=100)
    environment: str | None = Field(default=None, max_length=50)
    by: str = Field(default="", max_length=100)
    url: str = Field(default="", max_length=2000)
    # Deploys that carry the same release id were released together (the apps file's `groups:`).
    release: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9._/:-]*$")

    @field_validator("by")
    @classmethod
    def _by(cls, v: str) -> str:
        if v and not _WHO.match(v):
            raise ValueError("'by' may not hold control characters, <, >, ` or *")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not _URL.match(v):
            raise ValueError("'url' must be an http:// or https:// URL")
        return v


class Deploy(BaseModel):
    """A deploy Rewind was told of."""

    id: str
    app: str
    version: str
    environment: str
    by: str = ""
    url: str = ""
    release: str = ""  # the release id it was part of, if CI gave one
    source: str = "api"  # api | github | cli
    at: datetime = Field(default_factory=utcnow)


def parse_report(data: Any) -> DeployReport:
    """A JSON body as a report, or a UserFacingError naming the field that is wrong."""
    if not isinstance(data, dict):
        raise UserFacingError('the body must be a JSON object: {"app": …, "version": …}')
    try:
        return DeployReport.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise UserFacingError(f"{field}: {err['msg']}") from None


def check_report(apps: AppsFile, report: DeployReport, source: str) -> tuple[AppConfig, Deploy]:
    """The app must be known, the version shaped like one, the environment the app's own."""
    app = apps.app(report.app)
    if app is None:
        known = ", ".join(sorted(apps.apps)) or "none"
        raise UserFacingError(f"unknown app {report.app[:100]!r}; known apps: {known}")
    if not is_version(report.version):
        raise UserFacingError(
            f"{report.version[:100]!r} is not a version: use a tag or commit "
            "(letters, digits, '.', '_', '/', '-'; at most 100 characters)"
        )
    if report.environment and report.environment.lower() != app.environment.lower():
        raise UserFacingError(
            f"{app.name} is configured as environment {app.environment!r}, "
            f"not {report.environment!r}: this deploy is not one Rewind watches"
        )
    deploy = Deploy(
        id=secrets.token_hex(4),
        app=app.name,
        version=report.version,
        environment=app.environment,
        by=report.by,
        url=report.url,
        release=report.release,
        source=source,
    )
    return app, deploy


# ---- secrets ---------------------------------------------------------------------------------


def bearer_ok(header: str | None, token: str | None) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time; no token set: never."""
    if not token or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the raw body, as GitHub signs and as Rewind signs."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(header: str | None, secret: str | None, body: bytes) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(header.strip().encode(), sign(secret, body).encode())


# ---- GitHub ----------------------------------------------------------------------------------

# deployment_status states: only a successful deploy starts a watch.
_GITHUB_DONE = {"success"}


def github_report(payload: Any, apps: AppsFile) -> DeployReport | None:
    """A `deployment_status` payload as a report; None when it is not a finished deploy.

    The app is `deployment.payload.app` when the workflow sets it, else the repository's name;
    the version is `deployment.payload.version`, else the deployment's ref.
    """
    if not isinstance(payload, dict):
        raise UserFacingError("the body must be a JSON object")
    status = payload.get("deployment_status") or {}
    deployment = payload.get("deployment") or {}
    if not isinstance(status, dict) or not isinstance(deployment, dict):
        raise UserFacingError("not a deployment_status event")
    if status.get("state") not in _GITHUB_DONE:
        return None
    extra: dict[str, Any] = deployment.get("payload") or {}
    if not isinstance(extra, dict):
        extra = {}
    repo = payload.get("repository") or {}
    app = str(extra.get("app") or (repo.get("name") if isinstance(repo, dict) else "") or "")
    version = str(extra.get("version") or deployment.get("ref") or deployment.get("sha") or "")
    creator = status.get("creator") or deployment.get("creator") or {}
    by = str(creator.get("login", "")) if isinstance(creator, dict) else ""
    url = str(status.get("target_url") or status.get("log_url") or "")
    return parse_report(
        {
            "app": app,
            "version": version,
            "environment": deployment.get("environment") or None,
            "by": by,
            "url": url if _URL.match(url) else "",
            "release": str(extra.get("release") or ""),  # apps of a group released together
        }
    )
