"""The deploy strategies' names as the apps file reads them, and which keep a git checkout."""

from __future__ import annotations

# The strategies whose hosts keep a git checkout of the app in `workdir` (in `runners.strategies`,
# the `GitCheckout` ones; tests/test_strategies checks the two agree): the deployed version's
# source can be copied aside there before a redeploy moves the checkout (a scratch copy).
CHECKOUT_STRATEGIES = frozenset({"systemd", "docker-compose", "commands"})
