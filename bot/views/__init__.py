"""What an incident looks like in any front: the thread's pieces (`incident`) and the Markdown
report (`report`; a release group's one report: `group_report`). Pure: no I/O, no Slack markup.

Imports: bot.workflow, bot.config, bot.ports.
"""
