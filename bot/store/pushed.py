"""The jobs webhooks named (Modzy's Job Completion), from the webhook's answer until the worker applied them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from bot.store.db import insert_ignore
from bot.store.tables import PushedJob


def add(session: Session, queue: str, job_id: str, now: datetime) -> bool:
    """Owe the worker a read of the job; False when it is owed already (a repeated webhook)."""
    return (
        insert_ignore(session, PushedJob, [{"queue": queue, "job_id": job_id, "received_at": now, "attempts": 0}]) > 0
    )


def due(session: Session, queues: Sequence[str], *, limit: int) -> list[PushedJob]:
    """The oldest owed reads of the given queues."""
    stmt = select(PushedJob).where(col(PushedJob.queue).in_(list(queues))).order_by(col(PushedJob.received_at))
    return list(session.exec(stmt.limit(limit)).all())


def done(session: Session, queue: str, job_id: str) -> None:
    """The job was applied (or is gone): nothing more is owed."""
    row = session.get(PushedJob, (queue, job_id))
    if row is not None:
        session.delete(row)


def failed(session: Session, queue: str, job_id: str, *, tries: int) -> bool:
    """One more failed read; True when it was the last of `tries` (the row is then deleted, and the
    queue's reconciliation poll finds the change)."""
    row = session.get(PushedJob, (queue, job_id))
    if row is None:
        return False
    row.attempts += 1
    if row.attempts >= tries:
        session.delete(row)
        return True
    session.add(row)
    return False
