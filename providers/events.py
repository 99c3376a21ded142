"""Pushed state changes: the envelope of an EventBridge event, and which of two states of one job is newer.

An adapter that can read its provider's events has the `EventReading` capability
(providers/base.py): `job_from_event(event)` turns one event into the queue's `Job`, with the
adapter's own mapping, or None when the event is not about this queue (another source or
detail-type, another Region, a job outside the queue's scope). A malformed event (a required field
missing, a value of the wrong type) is a BadResponseError, as a malformed listing is.

Events come at least once and in no guaranteed order, and a poll may list a job while an event
about it is being applied, so the bot applies a state only when it is not older than the one it
stored (`stale`). The order is the provider's own, from the job's fields:

1. a finished job never moves back to a live status;
2. the provider's modification time (`updated_at`: SageMaker `LastModifiedTime`, Modzy
   `updatedAt`, Batch the latest of `stoppedAt`, `startedAt`) when both states have one and they
   differ;
3. then the attempt (providers/attempts.py): a retried job's new attempt is news even when it
   goes back to a queued status;
4. then the canonical status order (queued, running, stopping, finished), then the provider's
   native order where it has one (`native_order`, AWS Batch: SUBMITTED ... RUNNING).

A state equal to the stored one by all of these is a duplicate: not stale, and the diff finds
nothing new in it.

EventBridge envelope (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html):
`version`, `id`, `detail-type`, `source`, `account`, `time` (ISO 8601, UTC), `region`,
`resources`, `detail`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from providers._time import parse_iso
from providers.attempts import attempt_of
from providers.errors import BadResponseError
from providers.model import Job, JobStatus

RANK: dict[JobStatus, int] = {
    JobStatus.UNKNOWN: 0,
    JobStatus.QUEUED: 1,
    JobStatus.RUNNING: 2,
    JobStatus.STOPPING: 3,
}
FINISHED_RANK = 4


def rank(status: JobStatus) -> int:
    """The canonical status order: unknown, queued, running, stopping, then every finished status."""
    return RANK.get(status, FINISHED_RANK)


def stale(observed: Job, stored: Job, native_order: Sequence[str] = ()) -> bool:
    """Whether `observed` is older than `stored`, the same job as last stored (see the module's docstring)."""
    if stored.status.terminal and not observed.status.terminal:
        return True
    new, old = observed.updated_at, stored.updated_at
    if new is not None and old is not None and new != old:
        return new < old
    if attempt_of(observed) != attempt_of(stored):
        return attempt_of(observed) < attempt_of(stored)
    if rank(observed.status) != rank(stored.status):
        return rank(observed.status) < rank(stored.status)
    if observed.native_status in native_order and stored.native_status in native_order:
        return native_order.index(observed.native_status) < native_order.index(stored.native_status)
    return False


@dataclass(frozen=True)
class Envelope:
    """The EventBridge fields every event has, checked: what routing and the lag metric need."""

    id: str
    source: str
    detail_type: str
    region: str
    time: datetime | None
    detail: Mapping[str, Any]


def envelope(event: Mapping[str, Any]) -> Envelope:
    """The checked envelope of an EventBridge event; BadResponseError when it is not one."""
    if not isinstance(event, Mapping):
        raise BadResponseError("event: not a JSON object")
    missing = [k for k in ("source", "detail-type", "detail") if k not in event]
    if missing:
        raise BadResponseError(f"event: not an EventBridge event (no {', '.join(missing)})")
    detail = event["detail"]
    if not isinstance(detail, Mapping):
        raise BadResponseError("event: detail is not an object")
    try:
        when = parse_iso(event.get("time"))
    except ValueError as err:
        raise BadResponseError(f"event: bad time {event.get('time')!r}: {err}") from None
    return Envelope(
        id=str(event.get("id") or ""),
        source=str(event["source"]),
        detail_type=str(event["detail-type"]),
        region=str(event.get("region") or ""),
        time=when,
        detail=detail,
    )
