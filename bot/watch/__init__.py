"""Watching a deploy: after CI reports it, probe and read logs, compare, propose the rollback.

`model` (the watch as JSON in Redis), `judge` (thresholds, pure), `probe` (one round over HTTP
and SSH), `service` (recording a deploy, ticking a watch), `proposals` (posting the proposal,
answering its buttons), `hooks` (what an incident asks of the watch). The watch's Redis store is
`bot.store.watches`.

Imports: bot.workflow, bot.config, bot.ports, bot.telemetry, bot.steps, bot.incidents, bot.checks,
runners.
"""
