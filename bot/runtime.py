"""Wire the parts together from Settings: store, adapters, services, Slack client, worker."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry import RateLimitErrorRetryHandler

from bot.clock import Clock, utcnow
from bot.config import AppConfig, ConfigError, Settings, load_config
from bot.db import Database
from bot.lease import LeaseKeeper
from bot.pipeline.deliver import Deliverer
from bot.services import Services
from bot.worker import Worker
from providers import JobSource, build_source

log = logging.getLogger(__name__)


def slack_client(settings: Settings, *, token: str | None = None) -> WebClient:
    """A WebClient for posting: base URL from SLACK_API_URL, and no blind retries.

    slack_sdk's default handler retries a connection reset, which after Slack accepted a
    post is a duplicate; the outbox decides about retries instead (reliability.md §2.1).
    """
    if token is None:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return WebClient(token=token, base_url=base, timeout=10, retry_handlers=[])


def command_client(settings: Settings) -> WebClient:
    """The client Bolt uses for its own calls (auth.test): 429-aware retries are harmless there."""
    client = slack_client(settings)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    return client


def build_sources(config: AppConfig, **kwargs: Any) -> dict[str, JobSource]:
    """One adapter per configured queue."""
    return {q.name: build_source(q, **kwargs) for q in config.queues}


@dataclass
class Runtime:
    """Everything a process needs, built once at start-up."""

    settings: Settings
    config: AppConfig
    db: Database
    sources: Mapping[str, JobSource]
    services: Services
    worker: Worker


def build_runtime(
    settings: Settings,
    *,
    config: AppConfig | None = None,
    sources: Mapping[str, JobSource] | None = None,
    clock: Clock = utcnow,
    lease_ttl: timedelta | None = None,
) -> Runtime:
    """Read the queues file, open the store, build the adapters and the worker."""
    config = config or load_config(settings.jobwatch_config)
    db = Database(settings.database_url)
    if settings.jobwatch_auto_migrate:
        db.upgrade()
    elif not db.at_head():
        db.dispose()
        raise ConfigError(
            f"the database schema is at revision {db.revision()}, not the latest; run `jobwatch db upgrade` "
            "(or set JOBWATCH_AUTO_MIGRATE=true)"
        )
    sources = sources if sources is not None else build_sources(config)
    poster = slack_client(settings)
    deliverer = Deliverer(db, lambda _team: poster, clock=clock, digest_threshold=config.bot.digest_threshold)
    lease = LeaseKeeper(db, ttl=lease_ttl or timedelta(seconds=settings.jobwatch_lease_ttl), clock=clock)
    deliverer.fence = lease.fence
    worker = Worker(
        settings=settings, config=config, db=db, sources=sources, deliverer=deliverer, lease=lease, clock=clock
    )
    services = Services(config=config, db=db, sources=sources, clock=clock)
    return Runtime(settings, config, db, sources, services, worker)
