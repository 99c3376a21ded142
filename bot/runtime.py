"""Wire the parts together from Settings: store, adapters, services, Slack client, worker."""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry import RateLimitErrorRetryHandler

from bot.core.clock import Clock, FastForward, utcnow
from bot.core.config import AppConfig, ConfigError, Settings, load_config
from bot.features.directory import EmailDirectory
from bot.features.queries import Services
from bot.features.routing import Reconciled, TeamLookup, reconcile
from bot.ops.health import Readiness
from bot.ops.metrics import InstrumentedWebClient, Metrics
from bot.pipeline.buckets import PREFIX, Buckets
from bot.pipeline.deliver import Deliverer
from bot.pipeline.push import MAX_WAIT, Apply, EventConsumer, PushHooks, Route
from bot.pipeline.webhooks import Hook, WebhookReading, Webhooks
from bot.slack.install import Installations, install_mode
from bot.slackapi.errors import classify
from bot.store.db import Database
from bot.store.lease import LeaseKeeper
from bot.store.shards import ShardKeeper
from bot.worker import Worker
from providers import JobSource, build_source
from providers._aws import AwsQueue, events_client
from providers.base import EventReading, env_secret

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h)
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process (what MALLOC_ARENA_MAX does); False if not glibc.

    glibc gives threads their own arenas, up to 8 per CPU, and memory freed in one arena only
    serves later allocations of threads that use the same arena. The worker's scheduler threads
    take turns with the polls, so each arena kept the high-water mark of whichever polls ran on
    it: with five 10k-job queues about 15 MB more peak RSS than with two arenas (bench/run.py
    section (d)). The threads spend their time waiting on providers and the store, so sharing
    arenas costs no measurable speed. Call before starting threads; a MALLOC_ARENA_MAX set in
    the environment wins.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to cap
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, arenas))


def slack_client(
    settings: Settings, *, token: str | None = None, metrics: Metrics | None = None, timeout: int = 10
) -> WebClient:
    """A WebClient for posting: base URL from SLACK_API_URL, and no blind retries.

    slack_sdk's default handler retries a connection reset, which after Slack accepted a
    post is a duplicate; the outbox decides about retries instead (docs/reliability.md §Posting without blind retries).
    With `metrics`, every call and every error code is counted.
    """
    if token is None:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    if metrics is not None:
        return InstrumentedWebClient(
            token=token, base_url=base, timeout=timeout, retry_handlers=[], on_call=metrics.slack_call
        )
    return WebClient(token=token, base_url=base, timeout=timeout, retry_handlers=[])


def command_client(settings: Settings, *, metrics: Metrics | None = None) -> WebClient:
    """The client Bolt uses for its own calls (auth.test): 429-aware retries are harmless there."""
    client = slack_client(settings, metrics=metrics)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    return client


class TeamClients:
    """`client_for(team)` for delivery: the one token, or each workspace's own (install mode)."""

    def __init__(
        self, settings: Settings, installations: Installations | None, *, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.installations = installations
        self.metrics = metrics
        self._single = slack_client(settings, metrics=metrics) if installations is None else None
        self._clients: dict[str, WebClient] = {}
        self._lock = threading.Lock()

    def __call__(self, team_id: str) -> WebClient:
        if self._single is not None:
            return self._single
        assert self.installations is not None
        # Not installed (or uninstalled): no token, so Slack answers not_authed, a token error
        # that keeps the workspace's rows pending; nothing is lost.
        token = self.installations.bot_token(team_id) or ""
        with self._lock:
            client = self._clients.get(token)
            if client is None:
                client = self._clients[token] = slack_client(self.settings, token=token, metrics=self.metrics)
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
    metrics: Metrics
    installations: Installations | None = None
    webhooks: Webhooks | None = None  # providers' webhooks, for the HTTP process (bot/pipeline/webhooks.py)


def build_runtime(
    settings: Settings,
    *,
    config: AppConfig | None = None,
    sources: Mapping[str, JobSource] | None = None,
    clock: Clock = utcnow,
    lease_ttl: timedelta | None = None,
    metrics: Metrics | None = None,
    pace: FastForward | None = None,
) -> Runtime:
    """Read the queues file, open the store, build the adapters and the worker. `pace`: the time
    that paces Slack posts, when they should not wait in real time (tests, the demo)."""
    config = config or load_config(settings.jobwatch_config)
    db = open_store(settings)
    sources = sources if sources is not None else build_sources(config)
    metrics = metrics or Metrics()
    metrics.watch_store(db, [q.name for q in config.queues], clock=clock)
    try:
        reconcile(db, config, default_team=token_team(settings), now=clock())
    except ConfigError:
        db.dispose()
        raise
    installations = _installations(settings, config, db)
    clients = TeamClients(settings, installations, metrics=metrics)
    services = Services(config=config, db=db, sources=sources, clock=clock)
    deliverer = Deliverer(
        db,
        clients,
        clock=clock,
        digest_threshold=config.bot.digest_threshold,
        workers=config.bot.delivery_threads,
        turn=config.bot.delivery_turn,
        stop_by=services.stop_by,  # the same Stop buttons on alerts as on command replies
        sleep=None if pace is None else pace.sleep,  # None: real time, which a shutdown cuts short
        monotonic=None if pace is None else pace,
        on_stats=metrics.delivered,
    )
    lease = LeaseKeeper(db, ttl=lease_ttl or timedelta(seconds=settings.jobwatch_lease_ttl), clock=clock)
    deliverer.fence = lease.fence
    shards = buckets = None
    if settings.jobwatch_sharded:
        if not db.postgresql:
            db.dispose()
            raise ConfigError("JOBWATCH_SHARDED needs PostgreSQL (DATABASE_URL); SQLite has one worker, the lease's")
        shard_ttl = timedelta(seconds=settings.jobwatch_shard_ttl)
        shards = ShardKeeper(db, ttl=shard_ttl, clock=clock, owner=lease.owner)
        buckets = Buckets(ShardKeeper(db, ttl=shard_ttl, clock=clock, owner=lease.owner, prefix=PREFIX))
        deliverer.shard(buckets)
    worker = Worker(
        settings=settings,
        config=config,
        db=db,
        sources=sources,
        deliverer=deliverer,
        lease=lease,
        clock=clock,
        metrics=metrics,
        directory=EmailDirectory(db, clients, clock=clock, token_team=token_team(settings)),
        shards=shards,
        buckets=buckets,
    )
    worker.consumers = build_consumers(config, sources, worker.apply_pushed, metrics, clock=clock)
    webhooks = build_webhooks(config, sources, db, metrics, clock=clock)
    if webhooks is not None:
        webhooks.stored = lambda: worker.soon("webhooks")  # when this process runs the worker too
    return Runtime(settings, config, db, sources, services, worker, metrics, installations, webhooks)


def build_webhooks(
    config: AppConfig,
    sources: Mapping[str, JobSource],
    db: Database,
    report: PushHooks,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock = utcnow,
) -> Webhooks | None:
    """The webhooks of the queues that take them (`webhook = true`), with their secrets read from the
    environment now; None when no queue does."""
    env = env if env is not None else os.environ
    hooks: dict[str, Hook] = {}
    for queue in config.queues:
        source: object = sources.get(queue.name)
        if not getattr(queue, "webhook", False) or not isinstance(source, WebhookReading):
            continue
        header, variable = getattr(queue, "webhook_secret_header", None), getattr(queue, "webhook_secret_env", None)
        secret = env_secret(env, variable, queue=queue.name) if variable else None
        hooks[queue.name] = Hook(source, header, secret)
    return Webhooks(db, hooks, report=report, clock=clock) if hooks else None


def build_consumers(
    config: AppConfig,
    sources: Mapping[str, JobSource],
    apply: Apply,
    hooks: PushHooks,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock = utcnow,
    wait_s: int = MAX_WAIT,
) -> list[EventConsumer]:
    """One consumer per SQS queue of events that a queue names (`events_queue_url`), routing each
    event to every queue naming it whose adapter reads events; the SQS client has the first such
    queue's region and credentials."""
    named: dict[str, list[AwsQueue]] = {}
    for queue in config.queues:
        if isinstance(queue, AwsQueue) and queue.events_queue_url:
            named.setdefault(queue.events_queue_url, []).append(queue)
    consumers: list[EventConsumer] = []
    for url, queues in named.items():
        routes = [Route(q.name, source) for q in queues if isinstance(source := sources[q.name], EventReading)]
        if routes:
            client = events_client(queues[0], env=env, wait_s=wait_s)
            consumers.append(
                EventConsumer(
                    url=url, client=client, routes=routes, apply=apply, hooks=hooks, clock=clock, wait_s=wait_s
                )
            )
    return consumers


def open_store(settings: Settings) -> Database:
    """The store at DATABASE_URL, at the latest schema (migrated first with JOBWATCH_AUTO_MIGRATE),
    or ConfigError saying how to get there."""
    db = Database(settings.database_url)
    if settings.jobwatch_auto_migrate:
        db.upgrade()
    elif not db.at_head():
        db.dispose()
        raise ConfigError(
            f"the database schema is at revision {db.revision()}, not the latest; run `jobwatch db upgrade` "
            "(or set JOBWATCH_AUTO_MIGRATE=true)"
        )
    return db


def _installations(settings: Settings, config: AppConfig, db: Database) -> Installations | None:
    """The workspaces' installations in install mode (OAuth), else None (one bot token)."""
    if not install_mode(settings):
        return None
    assert settings.slack_client_id is not None
    if config.bot.ops_channel and not config.bot.ops_team:
        raise ConfigError(
            f"{config.path}: [bot]: key ops_team: required with ops_channel in install mode"
            " (the id of the workspace the channel is in)"
        )
    return Installations(db, settings.slack_client_id)


def token_team(settings: Settings) -> TeamLookup | None:
    """How a `[[subscriptions]]` entry without `team` finds its workspace: the one bot token's
    (Slack's auth.test, asked only when such an entry exists); None in install mode, where every
    entry must name its team."""
    if install_mode(settings):
        return None

    def lookup() -> str:
        try:
            return str(slack_client(settings, timeout=5).auth_test()["team_id"])
        except Exception as err:
            raise ConfigError(
                f"{settings.jobwatch_config}: [[subscriptions]]: cannot learn the bot token's workspace "
                f"(auth.test: {classify(err).code}); set `team` in each entry"
            ) from None

    return lookup


def reload_subscriptions(settings: Settings, db: Database, *, clock: Clock = utcnow) -> Reconciled:
    """Read the queues file again and reconcile its `[[subscriptions]]` (`jobwatch reload`, SIGHUP).
    Only subscriptions: changes to queues take effect at the next start. ConfigError when the file is
    invalid, and then nothing changes."""
    return reconcile(db, load_config(settings.jobwatch_config), default_team=token_team(settings), now=clock())


def readiness(runtime: Runtime, *, worker: bool) -> Readiness:
    """The /readyz checks of this process: store and Slack, and fresh polls when it runs the worker."""
    intervals = None
    if worker:
        intervals = {name: runtime.config.interval(s.config, runtime.settings) for name, s in runtime.sources.items()}
    client = slack_client(runtime.settings, metrics=runtime.metrics, timeout=3)  # a probe must answer quickly
    return Readiness(runtime.db, client, intervals=intervals, clock=runtime.worker.clock)
