"""The runbook's step bodies (prerequisites, assess, code, database, redeploy, verify, monitor,
report), each returning its facts model; `registry` maps a step to its body. Each builds its
host commands in a pure function that the plan uses too.

Imports: bot.workflow, bot.config, bot.ports, bot.views, bot.telemetry, runners.
"""
