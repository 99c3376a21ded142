"""Settings from the environment and the TOML queues file, validated at start-up.

A bad queues file raises ConfigError naming the file, the queue and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.owners import OwnerNotify, check_owner_from
from bot.core.quiet import check_zone, parse_window
from providers import SOURCES, JobStatus, QueueConfig, log_tail_providers
from providers.base import MIN_POLL_INTERVAL, PollInterval
from providers.causes import parse_causes


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class Settings(BaseSettings):
    """Process settings, 12-factor: read from the environment (docs/configuration.md §Environment)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    # Install mode (several workspaces through OAuth) instead of one SLACK_BOT_TOKEN:
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_redirect_uri: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///jobwatch.db"
    jobwatch_config: Path = Path("jobwatch.toml")
    jobwatch_poll_interval: float = Field(default=60, ge=MIN_POLL_INTERVAL, allow_inf_nan=False)
    # A worker that dies holds the poller lease this long; a standby takes over after it.
    jobwatch_lease_ttl: float = Field(default=30, ge=2, le=600)
    # PostgreSQL only: the workers share the queues, each polled by one of them (docs/scaling.md);
    # a dead worker's queues are taken over JOBWATCH_SHARD_TTL after its last renewal.
    jobwatch_sharded: bool = False
    jobwatch_shard_ttl: float = Field(default=6, ge=2, le=600)
    port: int = Field(default=3000, ge=1, le=65535)
    # Socket Mode: seconds between WebSocket pings; a connection with no pong for 4 of them (or that
    # drops) is replaced by a new one from apps.connections.open (docs/slack-native.md §Socket Mode).
    jobwatch_socket_ping: float = Field(default=10, ge=0.1, le=60, allow_inf_nan=False)
    # serve, worker and poll run `jobwatch db upgrade` at start-up; turn off to migrate as a release step.
    jobwatch_auto_migrate: bool = True


class BotOptions(BaseModel):
    """The `[bot]` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digest_threshold: int = Field(default=20, ge=1)
    # Channels drained at once, one thread each (bot/pipeline/drain.py), and the seconds a channel's
    # drainer keeps its thread while other channels wait for one.
    delivery_threads: int = Field(default=64, ge=1, le=1024)
    delivery_turn: float = Field(default=10, ge=1, le=600, allow_inf_nan=False)
    failure_threshold: int = Field(default=3, ge=1)
    ops_channel: str | None = Field(default=None, pattern=r"^[CGD][A-Z0-9]{2,}$")
    ops_team: str | None = Field(default=None, pattern=r"^[TE][A-Z0-9]{2,}$")  # its workspace (install mode)
    # the Slack user group a follow-up of an unclaimed failure mentions when its owner is unknown
    follow_up_group: str | None = Field(default=None, pattern=r"^S[A-Z0-9]{2,40}$")
    poll_interval: PollInterval | None = None
    # Queues whose changes are pushed (events_queue_url) are polled only to reconcile, this often.
    reconcile_interval: PollInterval = 300.0
    retention_days: float = Field(default=30, gt=0)
    timezone: str = "UTC"  # IANA name: the hours of `/jobs subscribe --dry-run`
    # Sharded polling (JOBWATCH_SHARDED): what one worker polls alone, each queue ("queue") or every
    # queue of one provider account scope ("account", QueueConfig.account_scope; docs/scaling.md).
    shard_by: Literal["queue", "account"] = "queue"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value

    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)


USER_ID = r"^[UW][A-Z0-9]{2,40}$"


class AccessOptions(BaseModel):
    """The `[access]` table: who may change subscriptions (empty: everyone), and who may stop jobs
    (`operators`; empty: nobody, and a queue's own `operators` replaces this list for that queue)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    admins: tuple[str, ...] = ()
    operators: tuple[Annotated[str, StringConstraints(pattern=USER_ID)], ...] = ()


class OwnersOptions(BaseModel):
    """The `[owners]` table: owner values (as `owner_from` reads them) -> Slack user ids, and what an
    owner hears (`notify`: "dm", a thread mention on failure and a DM when the job ends; "thread",
    the mention only; "off", nothing). Keys compare case-insensitively (bot/core/owners.py)."""

    model_config = ConfigDict(frozen=True)

    notify: OwnerNotify = OwnerNotify.DM
    users: dict[str, Annotated[str, StringConstraints(pattern=USER_ID)]] = {}


def _owners(path: Path, data: Any) -> OwnersOptions:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: key owners: use an [owners] table")
    users = {k: v for k, v in data.items() if k != "notify"}
    for key, value in users.items():
        if not isinstance(value, str) or not re.match(USER_ID, value):
            raise ConfigError(f"{path}: [owners]: key {key!r}: {value!r} is not a Slack user id (such as U0123ABCD)")
    try:
        return OwnersOptions(
            notify=data.get("notify", OwnerNotify.DM.value), users={k.strip().lower(): v for k, v in users.items()}
        )
    except ValidationError as err:
        raise ConfigError(f"{path}: [owners]: {_errors(err)}") from None


SUBSCRIPTION_GLOB = r"^[A-Za-z0-9_.*?\[\]!/:-]{1,100}$"  # the job-name patterns `/jobs subscribe --match` takes


EVENTS = ("slow", "stuck")  # events beside the statuses that a subscription may name (bot/pipeline/usual.py)


def _event(value: str) -> str:
    """A canonical status or `slow`/`stuck`, as `statuses` of a [[subscriptions]] table names them."""
    word = value.lower()
    if word in EVENTS or word in {s.value for s in JobStatus}:
        return word
    known = ", ".join([*(s.value for s in JobStatus), *EVENTS])
    raise ValueError(f"{value!r} is not a status or event; use one of: {known}")


FOLLOW_UP_RE = re.compile(r"^(\d{1,4})([mhd])$")
FOLLOW_UP_UNITS = {"m": 60, "h": 3600, "d": 86400}


def follow_up_seconds(value: str) -> int:
    """`30m`, `2h`, `1d` as seconds (5 minutes to 7 days), or ValueError."""
    found = FOLLOW_UP_RE.match(value.strip().lower())
    seconds = int(found.group(1)) * FOLLOW_UP_UNITS[found.group(2)] if found else 0
    if not 300 <= seconds <= 7 * 86400:
        raise ValueError("follow_up: give a time from 5m to 7d, such as 30m, 2h or 1d")
    return seconds


class SubscriptionEntry(BaseModel):
    """One `[[subscriptions]]` table: a channel subscribed from the queues file (bot/features/routing.py).

    `team` may be left out with one SLACK_BOT_TOKEN: it is then the token's workspace (auth.test).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = Field(pattern=r"^[CG][A-Z0-9]{1,40}$")
    team: str | None = Field(default=None, pattern=r"^[TE][A-Z0-9]{2,40}$")
    queue: str
    # canonical statuses, and the `slow` / `stuck` events (bot/pipeline/usual.py)
    statuses: tuple[Annotated[str, AfterValidator(_event)], ...] = ()
    match: str | None = Field(default=None, pattern=SUBSCRIPTION_GLOB)
    causes: tuple[str, ...] = ()  # failure causes, as `--cause` takes them (providers/causes.py)
    quiet: str | None = None  # quiet hours "20:00-08:00" (bot/core/quiet.py)
    quiet_tz: str | None = None  # their IANA zone; default [bot] timezone
    quiet_all: bool = False  # hold failures too
    owner: str | None = Field(default=None, pattern=USER_ID)  # only this Slack user's jobs (bot/core/owners.py)
    recovery: bool = True  # a family's first success after failures passes the status filter
    follow_up: str | None = None  # "30m": an unclaimed failure gets one follow-up after that long

    @field_validator("follow_up")
    @classmethod
    def _follow_up(cls, value: str | None) -> str | None:
        if value is not None:
            follow_up_seconds(value)
        return value

    def follow_up_seconds(self) -> int | None:
        """`follow_up` in seconds, or None."""
        return follow_up_seconds(self.follow_up) if self.follow_up else None

    @field_validator("quiet")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        return None if value is None else "-".join(parse_window(value))

    @field_validator("causes")
    @classmethod
    def _causes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return parse_causes(",".join(value)) if value else ()

    @field_validator("quiet_tz")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    def quiet_hours(self) -> tuple[str | None, str | None, str | None, bool]:
        """(quiet_start, quiet_end, quiet_tz, quiet_all) as the subscription row stores them."""
        if self.quiet is None:
            return None, None, None, False
        start, end = self.quiet.split("-")
        return start, end, self.quiet_tz, self.quiet_all

    def label(self) -> str:
        """How messages name the entry: `channel C123 queue ml`."""
        return f"channel {self.channel} queue {self.queue}" + (f" team {self.team}" if self.team else "")


class AppConfig(BaseModel):
    """The whole queues file."""

    model_config = ConfigDict(frozen=True)

    path: Path
    bot: BotOptions = BotOptions()
    access: AccessOptions = AccessOptions()
    queues: tuple[QueueConfig, ...] = ()
    subscriptions: tuple[SubscriptionEntry, ...] = ()
    owners: OwnersOptions = OwnersOptions()

    def queue(self, name: str) -> QueueConfig | None:
        """The queue called `name`, if configured."""
        return next((q for q in self.queues if q.name == name), None)

    def interval(self, queue: QueueConfig, settings: Settings) -> float:
        """Seconds between polls: the queue's; for a queue whose changes are pushed, `[bot]
        reconcile_interval`; else the file's `[bot]` poll_interval, or the environment's."""
        if queue.poll_interval:
            return queue.poll_interval
        if pushed(queue):
            return self.bot.reconcile_interval
        return self.bot.poll_interval or settings.jobwatch_poll_interval

    def shard_scope(self, queue: QueueConfig) -> str:
        """The scope `queue` is polled in with sharded polling (bot/store/shards.py): the queue itself
        (`[bot] shard_by = "queue"`), or its adapter's account scope (`"account"`: the queues that
        spend one provider rate budget are polled by one worker; QueueConfig.account_scope)."""
        return queue.account_scope() if self.bot.shard_by == "account" else queue.name

    def operators(self, queue: QueueConfig) -> tuple[str, ...]:
        """Who may stop the queue's jobs: the queue's own list when it sets one, else `[access]`'s."""
        return queue.operators if queue.operators is not None else self.access.operators


def pushed(queue: QueueConfig) -> bool:
    """Whether the queue's changes are pushed to the bot (an SQS queue of events, or a provider's
    webhook: docs/push.md)."""
    return bool(getattr(queue, "events_queue_url", None) or getattr(queue, "webhook", False))


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(table)"


def _errors(err: ValidationError) -> str:
    return "; ".join(f"key {_where(e['loc'])}: {e['msg']}" for e in err.errors())


def _queue(path: Path, index: int, table: Any) -> QueueConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: queues[{index}] must be a table")
    label = f"queue {table.get('name')!r}" if table.get("name") else f"queues[{index}]"
    provider = table.get("provider")
    if provider not in SOURCES:
        known = ", ".join(sorted(SOURCES))
        raise ConfigError(f"{path}: {label}: key provider: {provider!r} is not one of: {known}")
    if "log_tail" in table and provider not in log_tail_providers():
        raise ConfigError(
            f"{path}: {label}: key log_tail: {provider} has no job logs jobwatch can read "
            f"(log_tail works for: {', '.join(log_tail_providers())})"
        )
    try:
        queue = SOURCES[provider].config.model_validate(table)
    except ValidationError as err:
        raise ConfigError(f"{path}: {label}: {_errors(err)}") from None
    if queue.owner_from is not None:
        try:
            check_owner_from(queue.owner_from, provider)
        except ValueError as err:
            raise ConfigError(f"{path}: {label}: key owner_from: {err}") from None
    return queue


def _subscription(path: Path, index: int, table: Any, queues: set[str]) -> SubscriptionEntry:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: subscriptions[{index}] must be a table")
    label = f"subscriptions[{index}]"
    if table.get("channel") and table.get("queue"):
        label += f" (channel {table['channel']!r}, queue {table['queue']!r})"
    try:
        entry = SubscriptionEntry.model_validate(table)
    except ValidationError as err:
        raise ConfigError(f"{path}: {label}: {_errors(err)}") from None
    if entry.queue not in queues:
        known = ", ".join(sorted(queues)) or "none configured"
        raise ConfigError(f"{path}: {label}: key queue: no queue called {entry.queue!r} (queues: {known})")
    return entry


def _subscriptions(
    path: Path, data: Mapping[str, Any], queues: tuple[QueueConfig, ...]
) -> tuple[SubscriptionEntry, ...]:
    tables = data.get("subscriptions", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: key subscriptions: use [[subscriptions]] tables")
    names = {q.name for q in queues}
    entries = tuple(_subscription(path, i, t, names) for i, t in enumerate(tables))
    seen: set[tuple[str | None, str, str]] = set()
    for i, e in enumerate(entries):
        key = (e.team, e.channel, e.queue)
        if key in seen:
            raise ConfigError(
                f"{path}: subscriptions[{i}] ({e.label()}): key queue: this channel already has an entry for it"
            )
        seen.add(key)
    return entries


def parse_config(path: Path, data: Mapping[str, Any]) -> AppConfig:
    """Validate an already-parsed queues file."""
    unknown = set(data) - {"bot", "access", "queues", "subscriptions", "owners"}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s): {', '.join(sorted(unknown))}")
    tables = data.get("queues", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: key queues: use [[queues]] tables")
    queues = tuple(_queue(path, i, t) for i, t in enumerate(tables))
    seen: set[str] = set()
    for q in queues:
        if q.name in seen:
            raise ConfigError(f"{path}: queue {q.name!r}: key name: duplicate queue name")
        seen.add(q.name)
    try:
        bot = BotOptions.model_validate(data.get("bot", {}))
    except ValidationError as err:
        raise ConfigError(f"{path}: [bot]: {_errors(err)}") from None
    try:
        access = AccessOptions.model_validate(data.get("access", {}))
    except ValidationError as err:
        raise ConfigError(f"{path}: [access]: {_errors(err)}") from None
    subscriptions = _subscriptions(path, data, queues)
    owners = _owners(path, data.get("owners", {}))
    return AppConfig(path=path, bot=bot, access=access, queues=queues, subscriptions=subscriptions, owners=owners)


def load_config(path: Path) -> AppConfig:
    """Read and validate the queues file at `path`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (set JOBWATCH_CONFIG)") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_config(path, data)


# Credentials adapters read from the environment when a queue names no variables of its own.
DEFAULT_SECRET_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "NCP_ACCESS_KEY",
    "NCP_SECRET_KEY",
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "MODZY_API_KEY",
)


def known_secrets(settings: Settings, config: AppConfig | None, env: Mapping[str, str]) -> Iterator[str]:
    """Every secret value this process holds: SecretStr settings and the provider credentials the
    queues name (or the ecosystem's default variables). For the log redactor."""
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            yield value.get_secret_value()
    names = set(DEFAULT_SECRET_ENV)
    for queue in config.queues if config is not None else ():
        for field in type(queue).model_fields:
            if field.endswith("_env") and getattr(queue, field):
                names.add(str(getattr(queue, field)))
    for name in sorted(names):
        if env.get(name):
            yield env[name].strip()
