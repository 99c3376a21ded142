"""The core: pure values and rules that every other layer shares.

Time (the injected clock), the configuration model, quiet-hours windows, the arithmetic of job
history (families, percentiles, what is usual), the outbox's states and kinds, and the subscription
filter. Nothing here opens a database session, builds SQL or talks to Slack; import-linter keeps
sqlmodel, sqlalchemy, slack_sdk and slack_bolt out (pyproject.toml, [tool.importlinter]).
"""
