"""`jobwatch check`: validate the configuration and try each queue's credentials once."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from sqlalchemy import inspect, make_url

from bot.core.clock import utcnow
from bot.core.config import ConfigError, Settings, load_config
from bot.features.directory import missing_scope
from bot.features.stopping import operator_text
from bot.runtime import build_sources
from bot.slack.install import token_problem
from bot.store.db import Database
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
    if config is not None and any(q.owner_from for q in config.queues):
        problems += email_scope_problems(settings.database_url, utcnow())
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if not problems:
        print("all checks passed")
    return 1 if problems else 0


def email_scope_problems(url: str, now: datetime) -> list[str]:
    """The workspaces where `users.lookupByEmail` recently answered `missing_scope` (the worker
    remembers it, bot/features/directory.py); nothing when the store does not exist yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).exists()):
        return []
    db = Database(url)
    try:
        with db.read() as session:
            if not inspect(session.connection()).has_table("email_user"):
                return []
        teams = missing_scope(db, now)
    finally:
        db.dispose()
    return [
        f"workspace {team}: Slack refused users.lookupByEmail (missing_scope), so job owners given as e-mail "
        "addresses are not looked up; add the bot scope users:read.email (manifest.yml) and reinstall the "
        "app, or map the addresses in [owners]"
        for team in teams
    ]
