"""The apps file (`apps_file`, every problem with its line: `apps_problems`) and the process
settings (`settings`), read once at start-up.

Imports: bot.workflow.
"""
