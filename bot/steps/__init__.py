"""The runbook's step bodies (prerequisites, assess, code, database, redeploy, verify, monitor,
report), each returning its facts model; `registry` maps a step to its body. A step's script of
host commands is declared once, as a `script.HostScript` that the run sends and the plan shows
(redeploy and database so far; the others' commands come from pure functions the plan calls).

Imports: bot.workflow, bot.config, bot.ports, bot.views, bot.telemetry, bot.checks, runners.
"""
