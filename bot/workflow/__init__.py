"""The pure core: the incident model, the runbook's steps, the policy, the state machine, release
groups (`group`, `group_flow`), and what to tell people (`messages`, rendered as plain text by
`render_text`).

No I/O. Imports nothing of Rewind's outside this package; never Slack, SSH, Redis or git.
"""
