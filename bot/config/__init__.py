"""The apps file (`apps_file`, every problem with its line: `apps_problems`, the checks across
keys: `apps_refs`) and the process settings (`settings`), read once at start-up.

Imports: bot.workflow, bot.checks (the config models of `metrics:` and `resources:`).
"""
