"""jobwatch: a Slack bot that tells ML and batch teams what their jobs are doing.

The package is built in layers, and a module imports only the layers below its own: the entry
modules at the top (`cli`, `runtime`, `web`, `worker`, `demo`, `check`) wire `slack` (the Bolt
handlers) and `ops` (health, metrics, logs), which sit on `pipeline` (poll -> diff -> enqueue ->
deliver and the worker's side jobs), which sits on `features` (the use cases the Slack side and the
worker share), which sit on `blocks` (Slack payloads), `store` (the database) and `slackapi` (Slack
Web API facts), all on `core` (pure values and rules) and the `providers` package; `sim` holds local
stand-ins for the demo and the tests. pyproject.toml's [tool.importlinter] contracts keep these
rules (`lint-imports`); docs/architecture.md draws them, with the data flow and where to find things.
"""
