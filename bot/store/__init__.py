"""Where Rewind keeps things: Redis (incidents, the per-app lock, the audit trail, the saq step
queue) and an in-memory store for the demo.

The only package that imports redis or saq. Imports: bot.workflow, bot.config, bot.ports,
bot.telemetry.
"""
