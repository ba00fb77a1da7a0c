"""Adapters to the hosts and tools: SSH (asyncssh) and local hosts, host scripts, command
templates (every value validated and shell-quoted), deploy strategies (`strategies/`), kept
releases, git (GitPython: the only place that imports it), alembic revision files read as text.

Imports: bot.workflow, bot.config, bot.ports, bot.telemetry.
"""
