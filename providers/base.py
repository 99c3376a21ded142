"""The adapter interface (a Protocol) and the queue-configuration base every provider extends."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from providers.errors import AuthError
from providers.model import Job, JobStatus

log = logging.getLogger(__name__)

QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

MIN_POLL_INTERVAL = 1.0
"""The shortest poll interval accepted, in seconds: self-hosted providers (a Modzy per tenant), local
stand-ins and test rigs are polled every second or two; cloud APIs want far longer
(docs/configuration.md §Environment)."""

MAX_FLOOR = 7 * 86_400.0
"""The longest slow_floor or stuck_floor accepted, in seconds (a week)."""

# A slow_floor or stuck_floor: a finite number of seconds from 1 to MAX_FLOOR (strict, as PollInterval).
Floor = Annotated[float, Field(ge=1.0, le=MAX_FLOOR, allow_inf_nan=False, strict=True)]

# A poll interval in the queues file: a finite number of seconds, at least MIN_POLL_INTERVAL
# (strict: `true` or "30" is refused instead of read as a number).
PollInterval = Annotated[float, Field(ge=MIN_POLL_INTERVAL, allow_inf_nan=False, strict=True)]


class QueueConfig(BaseModel):
    """Keys every `[[queues]]` table may set; providers subclass it with their scope keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=QUEUE_NAME.pattern)
    provider: str
    endpoint_url: str | None = None
    poll_interval: PollInterval | None = None
    access_key_env: str | None = None
    secret_key_env: str | None = None
    api_key_env: str | None = None
    # Channels allowed to subscribe to this queue (empty: any channel).
    channels: tuple[str, ...] = ()
    # Slack users who may stop this queue's jobs; replaces `[access] operators` when set.
    operators: tuple[Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,40}$")], ...] | None = None
    # Where a job's owner comes from: "field", "name:<regex with (?P<owner>...)>" or "tag:<key>"
    # (bot/core/owners.py).
    owner_from: str | None = None
    # A regular expression whose first group (or whole match) is a job's family (bot/core/history.py);
    # unset: the default rule strips trailing run ids, dates and counters.
    family: str | None = Field(default=None, min_length=1, max_length=300)
    # A running job is slow past max(slow_factor x its family's p90 run time, that p90 + slow_floor
    # seconds); a queued job is stuck past max(stuck_factor x the queue's p95 wait, stuck_floor
    # seconds) (bot/core/history.py; the floors keep near-zero spreads from flagging within seconds).
    slow_factor: float = Field(default=1.5, gt=1.0, le=100.0, allow_inf_nan=False)
    slow_floor: Floor = 300.0
    stuck_factor: Annotated[float, Field(ge=1.0, le=100.0, allow_inf_nan=False, strict=True)] = 1.0
    stuck_floor: Floor = 600.0

    @field_validator("family")
    @classmethod
    def _family_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"family is not a valid regular expression: {err}") from None
        return value

    def family_pattern(self) -> re.Pattern[str] | None:
        """The compiled `family` expression, if set."""
        return re.compile(self.family) if self.family else None

    def scope_text(self) -> str:
        """A short, human description of what the queue covers (no secrets)."""
        return ""

    def account_scope(self) -> str:
        """What shares this queue's rate budget at the provider: queues with the same account scope
        spend one budget, so sharded polling by account (`[bot] shard_by = "account"`) gives them to
        one worker (docs/scaling.md). Built from the configuration alone, so every worker reading the
        same queues file computes the same scope; no secret in it (`identity_digest`). By default
        the queue is its own scope; adapters whose provider throttles per account override it."""
        return f"{self.provider}:queue:{self.name}"


def identity_digest(*parts: str | None) -> str:
    """A short, stable digest of the parts that name an account's identity (endpoint URLs, the
    variables credentials are read from): they go into an account scope, which is stored and
    logged, only through this digest. `None` and "" are distinct from each other and from any text."""
    text = "\x00".join("\x01" if part is None else part for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def endpoint_host(url: str) -> str:
    """The host name of a base URL, as an account scope shows it (never the user, password, path
    or query, which may carry a credential); "" when it has none."""
    return (urlsplit(url).hostname or "").lower()


def env_secret(env: Mapping[str, str], name: str, *, queue: str) -> SecretStr:
    """Read one secret from the environment or raise AuthError naming the variable."""
    value = env.get(name, "").strip()
    if not value:
        raise AuthError(f"queue {queue!r}: environment variable {name} is not set")
    return SecretStr(value)


class JobSource(Protocol):
    """One configured queue of one provider, able to list its jobs.

    `list_jobs` returns every job whose state may have changed at or after `since`
    (everything when `since` is None: the baseline), plus the current state of each job
    in `live` that still exists. It follows every page; it returns a complete list or
    raises a ProviderError. It never returns raw provider data.
    """

    provider: ClassVar[str]

    @property
    def config(self) -> QueueConfig:
        """The queue this adapter lists."""
        ...

    def list_jobs(self, *, since: datetime | None, live: Sequence[Job]) -> list[Job]: ...

    def get_job(self, job_id: str) -> Job | None:
        """Fresh detail of one job, including its failure reason; None if it no longer exists."""
        ...

    def close(self) -> None: ...


# Deadline of one stop call (seconds to wait for the answer; connecting gets at most 5 of them).
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class StopResult:
    """What the provider answered to a stop request, in plain words.

    `accepted` is False only when the adapter sent nothing because there is nothing it can stop
    (a PAI run without a linked job); every refusal by the provider is a ProviderError instead.
    """

    accepted: bool
    message: str
    native_status: str | None = None  # the provider's status right after the call, when it says
    request_id: str | None = None  # the provider's request id, for the audit trail


@runtime_checkable
class Stoppable(Protocol):
    """An adapter that can ask its provider to stop one job (an optional capability).

    `stop_job` sends exactly one request (never retried: a second stop is a decision for the
    person who asked) with a deadline of STOP_TIMEOUT seconds. `job` is the job as last listed,
    so the adapter can use what it stored in `extra` (a PAI run's linked job). `reason` is the
    caller's text (who asked, and why); only providers with a reason field (AWS Batch) keep it.
    Refusals raise: AccessDeniedError, ConflictError (already stopping or finished),
    ThrottledError, NotFoundError, AuthError, UnavailableError (no answer in time: the stop may
    still have been applied).
    """

    provider: ClassVar[str]

    def stop_job(self, job: Job, *, reason: str) -> StopResult: ...


def stop_support(source: JobSource) -> str | None:
    """None when the adapter can stop jobs, else why not ("not supported by aitems")."""
    if isinstance(source, Stoppable):
        return None
    return f"not supported by {source.provider}"


def can_stop(source: JobSource) -> bool:
    """True when the adapter can stop jobs."""
    return stop_support(source) is None


# Deadline of one log-tail read, seconds (each of its two requests; the caller bounds the whole).
LOG_TIMEOUT = 5.0


@dataclass(frozen=True)
class LogTail:
    """The last lines of a job's log, oldest first, as the provider stored them (untrusted text).

    `source` says where they were read (log group and stream), for the reader of the note.
    """

    source: str
    lines: tuple[str, ...]


@runtime_checkable
class LogTailing(Protocol):
    """An adapter that can read the last lines of a job's log (an optional capability).

    `log_tail` makes at most two requests, without retries (the caller retries later, with
    backoff), each with a deadline of LOG_TIMEOUT seconds. It returns None when the job has no
    log (it ended before writing any). Errors are ProviderErrors: AuthError (the bot's identity
    may not read the logs; not retryable), ThrottledError, UnavailableError, BadResponseError.
    """

    provider: ClassVar[str]

    def log_tail(self, job: Job, *, lines: int) -> LogTail | None: ...


def wants_log_tail(source: JobSource) -> bool:
    """Whether the queue asks for log tails (`log_tail = true`) and its adapter can read them."""
    return isinstance(source, LogTailing) and bool(getattr(source.config, "log_tail", False))


@runtime_checkable
class Taggable(Protocol):
    """An adapter that can read one job's tags where its listing lacks them (an optional capability).

    `job_tags` sends one request (SageMaker ListTags, AWS Batch DescribeServiceJob) and returns the
    job's tags, key -> value; a provider that does not answer raises a ProviderError. The bot asks
    only for queues whose `owner_from` reads a tag, once per job (bot/pipeline/tags.py), several at a time
    and within `deadline_s`, the adapter's deadline for one poll.
    """

    provider: ClassVar[str]
    deadline_s: float

    def job_tags(self, job: Job) -> dict[str, str]: ...


def reads_tags(adapter: object) -> bool:
    """Whether an adapter (or its class) has the Taggable capability."""
    return callable(getattr(adapter, "job_tags", None))


@runtime_checkable
class EventReading(Protocol):
    """An adapter that can read its provider's pushed state changes (an optional capability).

    `job_from_event` turns one event (an EventBridge event as a JSON object: SageMaker, AWS
    Batch) into the queue's Job with the adapter's own mapping, without any request; None when the
    event is not about this queue (another source or detail-type, another Region, a job outside the
    queue's scope). A malformed event is a BadResponseError. `native_order`: the provider's
    statuses in the order a job goes through them, where the canonical order does not say enough
    (providers/events.py `stale`).
    """

    provider: ClassVar[str]
    native_order: ClassVar[tuple[str, ...]]

    def job_from_event(self, event: Mapping[str, Any]) -> Job | None: ...


def native_order(adapter: object) -> tuple[str, ...]:
    """The adapter's native status order for ordering two states of a job (empty: none)."""
    order = getattr(adapter, "native_order", ())
    return tuple(order) if isinstance(order, tuple) else ()


def reads_events(adapter: object) -> bool:
    """Whether an adapter (or its class) has the EventReading capability."""
    return callable(getattr(adapter, "job_from_event", None))


_LOGGED_UNKNOWN: set[tuple[str, str]] = set()


def map_status(provider: str, native: str, table: Mapping[str, JobStatus]) -> JobStatus:
    """Look a native status up in a provider's table; an unmapped value is `unknown`, logged once."""
    status = table.get(native)
    if status is not None:
        return status
    if (provider, native) not in _LOGGED_UNKNOWN:
        _LOGGED_UNKNOWN.add((provider, native))
        log.warning("unmapped_status provider=%s native_status=%r", provider, native)
    return JobStatus.UNKNOWN


def default_env() -> Mapping[str, str]:
    """The process environment, as adapters read their credentials from it."""
    return os.environ
