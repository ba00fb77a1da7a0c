"""docker-compose: a git checkout on every host, the project rebuilt and restarted."""

from __future__ import annotations

from runners.strategies.base import FETCH, VERSION, GitCheckout

DOCKER_COMPOSE = GitCheckout(
    name="docker-compose",
    defaults={
        "fetch": FETCH,
        "install": "docker compose -p {service} build",
        "restart": "docker compose -p {service} down && docker compose -p {service} up -d",
        "stop": "docker compose -p {service} down",
        "start": "docker compose -p {service} up -d",
        "status": "docker compose -p {service} ps",
        "logs": "docker compose -p {service} logs --no-color --since {since}",
        "version": VERSION,
    },
    # The image build caches by layer: building every time costs little and misses nothing.
    dependency_file=None,
)
