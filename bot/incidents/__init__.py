"""The incident service (`service`: opens incidents, applies events, carries out effects; with
`app_locks`, the app's lock as an opening incident takes it, and `ending`, what follows an
incident's end) and the step runner (`step_runner`: runs a step's body on a worker, fenced;
`host_runners`: an incident's SSH connections, kept between its steps), and release groups
(`groups`: a group's member incidents opened together, all locks or none, in one thread, kept in
step after each transition by the pure `bot.workflow.group_flow`). Callers hold the one
they need: the fronts the service, workers the runner (whose `.incidents` is the service).

Imports: bot.workflow, bot.config, bot.ports, bot.steps, bot.views, bot.telemetry. Slack, SSH,
Redis and git are reached only through bot.ports.
"""
