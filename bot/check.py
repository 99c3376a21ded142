"""`jobwatch check`: validate the configuration and try each queue's credentials once."""

from __future__ import annotations

import sys

from bot.config import ConfigError, Settings, load_config
from bot.install import token_problem
from bot.runtime import build_sources
from bot.stopping import operator_text
from providers import ProviderError


def check(settings: Settings) -> int:
    """Print what is wrong (or OK) for the environment and every queue; 0 when all is well."""
    problems: list[str] = []
    token = token_problem(settings, "to serve and to post")
    if token is not None:
        problems.append(token)
    if not settings.slack_signing_secret and not settings.slack_app_token:
        problems.append("neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN (Socket Mode) is set")
    try:
        config = load_config(settings.jobwatch_config)
    except ConfigError as err:
        problems.append(str(err))
        config = None
    if config is not None:
        print(f"{config.path}: {len(config.queues)} queue(s)")
        for queue in config.queues:
            try:
                source = build_sources(config.model_copy(update={"queues": (queue,)}))[queue.name]
                jobs = source.list_jobs(since=None, live=[])
                source.close()
                print(f"  {queue.name} ({queue.provider}): OK, {len(jobs)} job(s) listed")
                print(f"    stop from Slack: {operator_text(config, source)}")
            except ProviderError as err:
                problems.append(f"queue {queue.name!r} ({queue.provider}): {type(err).__name__}: {err}")
            except ValueError as err:
                problems.append(f"queue {queue.name!r} ({queue.provider}): {err}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if not problems:
        print("all checks passed")
    return 1 if problems else 0
