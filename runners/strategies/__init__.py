"""Deploy strategies: how an app's hosts get a version, one module per strategy.

A strategy says which commands it runs (defaults an app may override in `deploy.commands`),
which file means "install the dependencies again", how the logs command wants `{since}`, where
it runs, and how to tell that a host is on the rollback target. The redeploy and verify steps
ask the strategy; they hold no strategy's name. A new strategy is one module here, registered in
`REGISTRY`, plus its tests (and its name in the apps file's `deploy.strategy`).
"""

from __future__ import annotations

from runners.strategies.base import DeployStrategy
from runners.strategies.commands import COMMANDS
from runners.strategies.docker_compose import DOCKER_COMPOSE
from runners.strategies.kubernetes import KUBERNETES
from runners.strategies.systemd import SYSTEMD

REGISTRY: dict[str, DeployStrategy] = {
    s.name: s for s in (SYSTEMD, DOCKER_COMPOSE, COMMANDS, KUBERNETES)
}


def strategy(name: str) -> DeployStrategy:
    """The strategy called `name` (the apps file's `deploy.strategy`, already validated)."""
    return REGISTRY[name]


__all__ = ["REGISTRY", "DeployStrategy", "strategy"]
