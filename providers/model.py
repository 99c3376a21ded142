"""The canonical job model every adapter returns (docs/architecture.md §Canonical job model)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

ExtraValue = str | int | float | bool | None


class JobStatus(StrEnum):
    """Canonical job status; every provider's native status maps onto one of these."""

    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    TIMED_OUT = "timed_out"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        """True for the statuses a job never leaves."""
        return self in TERMINAL


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.TIMED_OUT}
)


def encodable(text: str) -> str:
    """`text` with lone surrogates replaced by `?`: JSON may carry them (`"\\ud800"`) but UTF-8 cannot,
    so one such job name would make every store write of its queue fail."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _all_encodable(texts: Sequence[str]) -> bool:
    """Whether every one of `texts` encodes as UTF-8 (no lone surrogates), checked in one call."""
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# One set object per combination of explicitly given fields, shared by every Job given them.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}

# The validation context of JSON the bot wrote itself from a Job it had validated (`Job.stored`).
_STORED = object()


class Job(BaseModel):
    """One job as a queue lists it, normalised; the provider's own status is kept verbatim.

    `refs` are the provider's other identifiers of the job, beyond `id` and `name`, that a user
    may type to name it: the AiTEMS version, the Batch jobId, the PAI run's training or DLC job id.
    SageMaker (ARN, name) and Modzy (jobIdentifier) need none. The bot finds a job by its id, any
    of its refs, or its name (bot/store/refs.py).
    """

    model_config = ConfigDict(frozen=True)

    queue: str
    id: str
    name: str
    status: JobStatus
    native_status: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    reason: str | None = None
    url: str | None = None
    extra: dict[str, ExtraValue] = {}
    refs: tuple[str, ...] = ()

    @field_validator("id", "name", "native_status", "reason", "url")
    @classmethod
    def _encodable(cls, value: str | None, info: ValidationInfo) -> str | None:
        return value if value is None or info.context is _STORED else encodable(value)

    @field_validator("extra")
    @classmethod
    def _encodable_extra(cls, value: dict[str, ExtraValue], info: ValidationInfo) -> dict[str, ExtraValue]:
        # One encode of all the strings joined (joined lone surrogates stay unencodable) is the
        # common case's whole cost; only a dict with a bad string is rebuilt.
        if info.context is _STORED or _all_encodable([*value, *(v for v in value.values() if isinstance(v, str))]):
            return value
        return {encodable(k): encodable(v) if isinstance(v, str) else v for k, v in value.items()}

    @field_validator("refs")
    @classmethod
    def _encodable_refs(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return value if info.context is _STORED or _all_encodable(value) else tuple(encodable(v) for v in value)

    @field_validator("created_at", "updated_at", "started_at", "ended_at")
    @classmethod
    def _aware_utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None or info.context is _STORED:
            return value
        if value.tzinfo is None:
            raise ValueError("datetime must be timezone-aware")
        return value.astimezone(UTC)

    @classmethod
    def stored(cls, data: str | bytes) -> Job:
        """A Job from JSON the bot wrote from a Job it had validated (a snapshot, an outbox payload):
        its strings were made encodable and its times UTC when that Job was made, so those checks
        are not run again (a cycle of 100k jobs reads thousands: its live jobs, the guard's, a
        burst's digest)."""
        return cls.model_validate_json(data, context=_STORED)

    def model_post_init(self, context: object, /) -> None:
        """Share the set of explicitly given fields with every Job given the same ones.

        pydantic keeps that set per instance (`model_fields_set`): with the 5 required fields
        and a few more it is a 728-byte hash table, over a third of a Job, and a baseline holds a
        whole history of Jobs (10,000: 7 MB of identical sets). A frozen model never changes
        its set in place; model_copy() copies it before adding the updated fields.
        """
        given = self.__pydantic_fields_set__
        object.__setattr__(self, "__pydantic_fields_set__", _FIELDS_SETS.setdefault(frozenset(given), given))

    @property
    def duration_seconds(self) -> float | None:
        """Run time so far (or in total, once ended), from start (or creation) to end (or update)."""
        start = self.started_at or self.created_at
        end = self.ended_at or (self.updated_at if not self.status.terminal else None)
        if start is None or end is None:
            return None
        return max(0.0, (end - start).total_seconds())
