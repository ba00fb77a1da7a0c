"""The incident service (`service`: opens incidents, applies events, carries out effects) and the
step runner (`step_runner`: runs a step's body on a worker, fenced).

Imports: bot.workflow, bot.config, bot.ports, bot.steps, bot.views, bot.telemetry. Slack, SSH,
Redis and git are reached only through bot.ports.
"""
