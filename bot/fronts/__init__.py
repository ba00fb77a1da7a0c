"""How people talk to Rewind: the `/rollback` language (`command`), what each command does for
every front (`dispatch`), and the fronts: `slack/` (Bolt, Block Kit, the Slack notifier) and
`terminal/` (the prompt).

Imports: bot.workflow, bot.config, bot.ports, bot.views, bot.incidents, bot.plan, bot.watch,
bot.telemetry. Only `slack/` imports slack_bolt or slack_sdk.
"""
