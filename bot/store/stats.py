"""Read-only summaries of the store for /metrics, /readyz and `/jobs queues` (read sessions, no
writer lock): the outbox's depth, what each channel is owed now, and each queue's poll state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, func, select

from bot.core.outbox import OutboxState
from bot.store import outbox as outbox_rows
from bot.store.db import Database
from bot.store.tables import OutboxItem, QueueState


@dataclass(frozen=True)
class OutboxSummary:
    """Rows by state and the creation time of the oldest pending one."""

    by_state: dict[str, int] = field(default_factory=dict)
    oldest_pending: datetime | None = None


@dataclass(frozen=True)
class PollState:
    """What the store knows about a queue's polls."""

    last_success_at: datetime | None
    consecutive_failures: int
    last_poll_at: datetime | None = None
    last_error: str | None = None


def outbox(db: Database) -> OutboxSummary:
    """Outbox depth by state and the oldest pending row."""
    with db.read() as session:
        counts = session.exec(select(OutboxItem.state, func.count()).group_by(col(OutboxItem.state))).all()
        oldest = session.exec(
            select(OutboxItem.created_at)
            .where(OutboxItem.state == OutboxState.PENDING.value)
            .order_by(col(OutboxItem.created_at))
            .limit(1)
        ).first()
    return OutboxSummary({state: int(n) for state, n in counts}, oldest)


@dataclass(frozen=True)
class ChannelDue:
    """A channel's (a DM's: the person's) pending rows due now, and since when the oldest has been due."""

    count: int
    since: datetime


def due_by_channel(db: Database, now: datetime) -> dict[str, ChannelDue]:
    """Channel id -> what it is owed by `now`, every team's rows of the channel together."""
    with db.read() as session:
        groups = outbox_rows.due_channels(session, now)
    found: dict[str, ChannelDue] = {}
    for due in groups:
        seen = found.get(due.channel_id)
        if seen is None:
            found[due.channel_id] = ChannelDue(due.count, due.since)
        else:
            found[due.channel_id] = ChannelDue(seen.count + due.count, min(seen.since, due.since))
    return found


def _state(row: QueueState) -> PollState:
    return PollState(row.last_success_at, row.consecutive_failures, row.last_poll_at, row.last_error)


def poll_states(session: Session) -> dict[str, PollState]:
    """Every polled queue's state: last poll, last success, failure streak and last error."""
    return {r.queue: _state(r) for r in session.exec(select(QueueState)).all()}


def poll_state(session: Session, queue: str) -> PollState | None:
    """One queue's poll state, or None before its first poll."""
    row = session.get(QueueState, queue)
    return None if row is None else _state(row)


def polls(db: Database) -> dict[str, PollState]:
    """Every queue's last successful poll and failure streak."""
    with db.read() as session:
        return poll_states(session)
