"""Queue state in the store: each queue's cursor (watermark), its baseline and its health (failed
polls in a row, whether the operators were told), advanced in the poll's own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.store.tables import QueueState


@dataclass(frozen=True)
class Health:
    """A queue's state before this poll's commit."""

    baselined: bool  # its first poll was committed before
    outage_notified: bool  # the operators were told it stopped polling
    failures: int  # failed polls in a row
    # the listing start of the last successful poll (None before the baseline): slow and stuck
    # flags are raised only for jobs that crossed their threshold after it (bot/pipeline/usual.py)
    watermark: datetime | None = None


def polled(session: Session, queue: str, *, started_at: datetime, now: datetime) -> Health:
    """Record a successful poll (the cursor moves to `started_at`; health is reset); returns the state before."""
    state = session.get(QueueState, queue) or QueueState(queue=queue)
    before = Health(state.baseline_at is not None, state.outage_notified, state.consecutive_failures, state.watermark)
    if state.baseline_at is None:
        state.baseline_at = now
    state.watermark = started_at
    state.last_poll_at = now
    state.last_success_at = now
    state.last_error = None
    state.consecutive_failures = 0
    state.outage_notified = False
    session.add(state)
    return before


def failed(session: Session, queue: str, *, error: str, now: datetime, threshold: int, at_once: bool) -> Health | None:
    """Count a failed poll. The operators are told once a queue has failed `threshold` polls in a
    row, or at once (`at_once`: a failure that waiting will not cure); returns the new health when
    this failure is the one to tell (it is then marked told), else None."""
    state = session.get(QueueState, queue) or QueueState(queue=queue)
    state.consecutive_failures += 1
    state.last_poll_at = now
    state.last_error = error
    crossed = (at_once or state.consecutive_failures >= threshold) and not state.outage_notified
    if crossed:
        state.outage_notified = True
    session.add(state)
    return Health(state.baseline_at is not None, True, state.consecutive_failures, state.watermark) if crossed else None


def health(session: Session, queue: str) -> Health:
    """A queue's state, read in the caller's transaction without changing it (a pushed change is no poll)."""
    state = session.get(QueueState, queue) or QueueState(queue=queue)
    return Health(state.baseline_at is not None, state.outage_notified, state.consecutive_failures, state.watermark)


def pushed(session: Session, queue: str, *, now: datetime) -> None:
    """Record that a pushed change of the queue was applied at `now` (`jobwatch check` shows it)."""
    state = session.get(QueueState, queue)
    if state is not None:
        state.last_event_at = now
        session.add(state)
