"""The adapter interface (a Protocol) and the queue-configuration base every provider extends."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from providers.errors import AuthError
from providers.model import Job, JobStatus

log = logging.getLogger(__name__)

QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

MIN_POLL_INTERVAL = 1.0
"""The shortest poll interval accepted, in seconds: self-hosted providers (a Modzy per tenant), local
stand-ins and test rigs are polled every second or two; cloud APIs want far longer (see the README)."""

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

    def scope_text(self) -> str:
        """A short, human description of what the queue covers (no secrets)."""
        return ""


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
