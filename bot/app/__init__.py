"""The long-running processes and their assembly: settings + apps file -> store, queue, notifier,
incident service and step runner; the web app (the Slack endpoint and the HTTP API) and the worker.

The composition root: may import anything but bot.cli.
"""
