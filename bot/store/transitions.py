"""The transition history in the store (table `transition`): the status changes the polls saw,
read back to replay a filter against the recent past (bot/features/routing.py `dry_run`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.store.tables import TransitionRecord


@dataclass(frozen=True)
class Transition:
    """One status change of one job, as a poll saw it."""

    job_id: str
    name: str
    old: str | None
    new: str
    reason: str | None
    at: datetime


def since(session: Session, queue: str, start: datetime) -> list[Transition]:
    """The status changes of `queue` after `start`."""
    rows = session.exec(
        select(TransitionRecord).where(TransitionRecord.queue == queue, col(TransitionRecord.at) > start)
    ).all()
    return [Transition(r.job_id, r.name, r.old, r.new, r.reason, r.at) for r in rows]
