"""What operators read: logs (text or JSON, secrets masked: `logs`, `redaction`) and Prometheus
metrics (`metrics`).

Imports: bot.workflow.
"""
