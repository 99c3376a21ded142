"""`jobwatch check`: validate the configuration and try each queue's credentials once."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import inspect, make_url
from sqlalchemy.exc import NoSuchTableError
from sqlmodel import select

from bot.core.clock import utcnow
from bot.core.config import AppConfig, ConfigError, Settings, load_config, pushed
from bot.features.directory import missing_scope
from bot.features.stopping import operator_text
from bot.runtime import build_sources
from bot.slack.install import token_problem
from bot.store.db import Database
from bot.store.tables import QueueState
from providers import SOURCES, ProviderError, QueueConfig
from providers._aws import AwsQueue, events_client
from providers.base import reads_events


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
        events = last_events(settings.database_url)
        for queue in config.queues:
            try:
                source = build_sources(config.model_copy(update={"queues": (queue,)}))[queue.name]
                jobs = source.list_jobs(since=None, live=[])
                source.close()
                print(f"  {queue.name} ({queue.provider}): OK, {len(jobs)} job(s) listed")
                print(f"    stop from Slack: {operator_text(config, source)}")
                line, problem = push_status(config, settings, queue, events.get(queue.name))
                print(f"    push: {line}")
                if problem is not None:
                    problems.append(f"queue {queue.name!r} ({queue.provider}): {problem}")
            except ProviderError as err:
                problems.append(f"queue {queue.name!r} ({queue.provider}): {type(err).__name__}: {err}")
            except ValueError as err:
                problems.append(f"queue {queue.name!r} ({queue.provider}): {err}")
    if config is not None and settings.jobwatch_sharded:
        scopes = len({config.shard_scope(q) for q in config.queues})
        print(
            f"sharded polling by {config.bot.shard_by}: {scopes} scope(s); "
            f"workers beyond {scopes} poll nothing (docs/scaling.md)"
        )
    if config is not None and any(q.owner_from for q in config.queues):
        problems += email_scope_problems(settings.database_url, utcnow())
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if not problems:
        print("all checks passed")
    return 1 if problems else 0


def push_status(
    config: AppConfig, settings: Settings, queue: QueueConfig, last: datetime | None
) -> tuple[str, str | None]:
    """Whether the queue's changes are pushed (docs/push.md), when the last one was applied, and
    what is wrong with its set-up: (the line to print, a problem or None). An SQS queue of events is
    read once (GetQueueAttributes, which the consumer's identity needs anyway) for its depth and its
    redrive policy: without a dead-letter queue a malformed message would come back for ever."""
    interval = config.interval(queue, settings)
    if not pushed(queue):
        how = "its events can be read (events_queue_url)" if reads_events(SOURCES[queue.provider].build) else ""
        if queue.provider == "modzy":
            how = "its Job Completion webhook can be taken (webhook = true)"
        hint = f"; {how}" if how else " (the provider pushes nothing jobwatch can read)"
        return f"not set up, polled every {interval:g} s{hint}", None
    seen = f"last event applied {last:%Y-%m-%d %H:%M:%S} UTC" if last else "no event applied yet"
    if isinstance(queue, AwsQueue) and queue.events_queue_url:
        try:
            client = events_client(queue, wait_s=0)
            attributes = client.get_queue_attributes(
                QueueUrl=queue.events_queue_url, AttributeNames=["ApproximateNumberOfMessages", "RedrivePolicy"]
            )["Attributes"]
            client.close()
        except (ClientError, BotoCoreError) as err:
            line = f"SQS {queue.events_queue_url}, cannot be read"
            return line, f"cannot read its SQS queue of events ({type(err).__name__}: {str(err)[:200]})"
        waiting = attributes.get("ApproximateNumberOfMessages", "?")
        line = f"SQS {queue.events_queue_url} ({waiting} waiting), {seen}; reconciled every {interval:g} s"
        if "RedrivePolicy" not in attributes:
            return line, "its SQS queue of events has no redrive policy: add a dead-letter queue (docs/push.md)"
        return line, None
    header = getattr(queue, "webhook_secret_header", None)
    secret = f"secret header {header}" if header else "no secret: anyone who can reach the URL may post"
    return f"webhook /webhooks/modzy/{queue.name} ({secret}), {seen}; reconciled every {interval:g} s", None


def last_events(url: str) -> dict[str, datetime | None]:
    """When each queue's last pushed change was applied, from the store (nothing when there is none yet)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).exists()):
        return {}
    db = Database(url)
    try:
        with db.read() as session:
            if "last_event_at" not in {c["name"] for c in inspect(session.connection()).get_columns("queuestate")}:
                return {}
            return {state.queue: state.last_event_at for state in session.exec(select(QueueState)).all()}
    except NoSuchTableError:
        return {}
    finally:
        db.dispose()


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
