"""The plan of a rollback: what Rewind would run now, found with read-only commands and built by
the steps' own command builders, so the plan and the run cannot drift apart (`group`: the plan
of a release group, each app's plan in the group's order).

Imports: bot.workflow, bot.config, bot.ports, bot.steps, bot.incidents, bot.checks, runners.
"""
