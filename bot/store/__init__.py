"""Where Rewind keeps things: Redis (incidents, the per-app lock, the audit trail, freezes and
plans; deploys and watches; the commands acked but not yet done; the stakeholder notices held
while Slack was down; the saq step queue) and an in-memory store for the demo.

`open_store(url)` (`stores.py`) builds every port on one Redis; `keys.py` names every key, prefix
and Lua script; a redis exception leaves a port only as `bot.workflow.errors.StoreError`
(`StoreUnavailable` when Redis cannot be reached, `errors.py`).

The only package that imports redis or saq. Imports: bot.workflow, bot.config, bot.ports,
bot.telemetry, and bot.watch's records (the deploy and the watch it keeps).
"""
