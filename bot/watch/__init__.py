"""Watching a deploy: after CI reports it, probe and read logs, compare, propose the rollback.

`model` (the watch as JSON in Redis), `judge` (thresholds, pure), `probe` (one round over HTTP
and SSH), `service` (recording a deploy, ticking a watch, answering a proposal).
"""
