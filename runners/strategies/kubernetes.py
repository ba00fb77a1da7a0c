"""kubernetes: `kubectl` on one host the apps file names (`deploy.run_on`), no checkout.

The rollback sets the deployment's image to the target tag (`{image}:{version}`), waits for the
rollout, and reads the image back. `undo` (`kubectl rollout undo`) puts the previous
ReplicaSet back, for a person to run when a rollout is stuck half-way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.config.apps_file import AppConfig, HostConfig
from runners.strategies.base import rfc3339_utc

_DEPLOYMENT = "deployment/{service}"
_NS = "--namespace {namespace}"


@dataclass(frozen=True)
class Kubernetes:
    name: str = "kubernetes"
    dependency_file: str | None = None  # the image carries its dependencies
    head_command: str | None = None  # the image read back by `version` is the truth

    @property
    def defaults(self) -> dict[str, str]:
        return {
            "restart": f"kubectl {_NS} set image {_DEPLOYMENT} {{service}}={{image}}:{{version}}",
            "status": f"kubectl {_NS} rollout status {_DEPLOYMENT} --timeout=300s",
            "version": (
                f"kubectl {_NS} get {_DEPLOYMENT} "
                "-o 'jsonpath={{.spec.template.spec.containers[0].image}}'"
            ),
            "undo": f"kubectl {_NS} rollout undo {_DEPLOYMENT}",
            "logs": f"kubectl {_NS} logs {_DEPLOYMENT} --all-containers --since-time={{since}}",
        }

    def since(self, at: datetime, utc_offset: int) -> str:
        return rfc3339_utc(at, utc_offset)

    def deploy_hosts(self, app: AppConfig) -> list[HostConfig]:
        run_on = app.deploy.run_on or app.hosts[0].name
        return [app.host(run_on)]

    def off_target(self, reported: str, head: str, expected_sha: str, target: str) -> str:
        tag = reported.rsplit(":", 1)[-1] if ":" in reported else ""
        if tag == target:
            return ""
        return f"the deployment runs {reported or 'no image'}, not the tag {target}"


KUBERNETES = Kubernetes()
