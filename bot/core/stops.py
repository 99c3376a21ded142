"""A stop asked of a provider (bot/features/stopping.py), as values: its states and actions as
closed sets, the rule that says when a standing request no longer stands, and `StopRequested`,
the request as bot/store/stops.py gives it back.

    requested -> accepted | refused | failed | unanswered

A request that did not stop the job (refused, failed, unanswered) may be asked again, which
reuses its row; so may one that no longer stands (`StopRequested.stands`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class StopState(StrEnum):
    """Where one stop request stands (the `state` column of `stop_request`)."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    FAILED = "failed"
    UNANSWERED = "unanswered"


class StopAction(StrEnum):
    """What was asked of the provider (the `action` column; one request per queue, job and action)."""

    STOP = "stop"


ASKABLE_AGAIN = frozenset({StopState.REFUSED, StopState.FAILED, StopState.UNANSWERED})
# A request still `requested` this long after it was made died with its process (the call has a
# deadline); one `accepted` this long ago whose job still runs did not take. Both may be asked again.
STALE_REQUESTED = timedelta(minutes=2)
STALE_ACCEPTED = timedelta(minutes=15)


@dataclass(frozen=True)
class StopRequested:
    """One stop request as stored: who asked, when, and where it stands."""

    id: int
    queue: str
    job_id: str
    action: StopAction
    user_id: str
    state: StopState
    requested_at: datetime

    def stale(self, now: datetime) -> bool:
        """A standing request that no longer stands: its process died mid-call, or the stop did not take."""
        age = now - self.requested_at
        return (self.state is StopState.REQUESTED and age > STALE_REQUESTED) or (
            self.state is StopState.ACCEPTED and age > STALE_ACCEPTED
        )

    def stands(self, now: datetime) -> bool:
        """Whether asking again must wait for it: it is neither askable again nor stale."""
        return self.state not in ASKABLE_AGAIN and not self.stale(now)
