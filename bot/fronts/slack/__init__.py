"""The Slack front: Bolt listeners (ack first, work after), Block Kit rendering, the paced Slack
notifier, action ids and button values, user groups.

The only package that imports slack_bolt or slack_sdk.
"""
