"""The terminal front: the same workflow and commands when Slack itself is down."""
