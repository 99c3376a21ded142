"""Read-only summaries of the store for /metrics and /readyz (read sessions, no writer lock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, func, select

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


def outbox(db: Database) -> OutboxSummary:
    """Outbox depth by state and the oldest pending row."""
    with db.read() as session:
        counts = session.exec(select(OutboxItem.state, func.count()).group_by(col(OutboxItem.state))).all()
        oldest = session.exec(
            select(OutboxItem.created_at)
            .where(OutboxItem.state == "pending")
            .order_by(col(OutboxItem.created_at))
            .limit(1)
        ).first()
    return OutboxSummary({state: int(n) for state, n in counts}, oldest)


def polls(db: Database) -> dict[str, PollState]:
    """Every queue's last successful poll and failure streak."""
    with db.read() as session:
        rows = session.exec(select(QueueState)).all()
    return {r.queue: PollState(r.last_success_at, r.consecutive_failures) for r in rows}
