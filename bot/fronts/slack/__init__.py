"""The Slack front: the Bolt app's factory (`app`), Bolt listeners (ack first, work after), Block
Kit rendering, the paced Slack notifier, Slack's Web API behind the `Chat` port (`chat`: names,
notices, `auth.test`), action ids and button values, user groups.

The only package that imports slack_bolt or slack_sdk.
"""
