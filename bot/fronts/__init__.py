"""How people talk to Rewind: the `/rollback` language (`command`), what each command does for
every front (`dispatch`), what a front must offer (`port`: `Front`, `Chat`), and the two fronts
that implement it: `slack/` (the Bolt app, Block Kit, the Slack notifier, Slack's Web API behind
`Chat`) and `terminal/` (the prompt).

Imports: bot.workflow, bot.config, bot.ports, bot.views, bot.incidents, bot.plan, bot.watch,
bot.telemetry. Only `slack/` imports slack_bolt or slack_sdk.
"""
