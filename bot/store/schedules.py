"""Scheduled digests in the store, as the worker reads them (bot/features/schedules.py): every
schedule, and what one period's digest is made of (the transition history and the finished jobs'
snapshots)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from bot.store.tables import DigestSchedule, JobSnapshot, TransitionRecord
from providers import Job

CHUNK = 500  # job ids per statement


def every(session: Session) -> Sequence[DigestSchedule]:
    """Every schedule, of every channel."""
    return session.exec(select(DigestSchedule)).all()


def transitions(session: Session, queue: str, start: datetime, end: datetime) -> Sequence[TransitionRecord]:
    """The status changes of `queue` from `start` (included) to `end` (excluded), in order."""
    return session.exec(
        select(TransitionRecord)
        .where(TransitionRecord.queue == queue, col(TransitionRecord.at) >= start, col(TransitionRecord.at) < end)
        .order_by(col(TransitionRecord.at), col(TransitionRecord.id))
    ).all()


def jobs(session: Session, queue: str, job_ids: Sequence[str]) -> list[Job]:
    """The snapshots of those of `job_ids` the store still has."""
    found: list[Job] = []
    for i in range(0, len(job_ids), CHUNK):
        rows = session.exec(
            select(JobSnapshot.data).where(
                JobSnapshot.queue == queue, col(JobSnapshot.job_id).in_(job_ids[i : i + CHUNK])
            )
        ).all()
        found += [Job.model_validate_json(data) for data in rows]
    return found
