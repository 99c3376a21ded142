"""Scheduled digests in the store: a channel's schedules as `/jobs digest` changes them and `/jobs
subscriptions` lists them (bot/features/channel_settings.py, bot/features/queries.py), and, for the
worker (bot/features/schedules.py), every schedule and what one period's digest is made of (the
transition history and the finished jobs' snapshots)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.store.tables import DigestSchedule, TransitionRecord


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


def _of(team_id: str, channel_id: str, queue: str) -> SelectOfScalar[DigestSchedule]:
    return select(DigestSchedule).where(
        DigestSchedule.team_id == team_id, DigestSchedule.channel_id == channel_id, DigestSchedule.queue == queue
    )


def of_channel(session: Session, team_id: str, channel_id: str) -> list[DigestSchedule]:
    """The channel's schedules, by queue."""
    stmt = select(DigestSchedule).where(DigestSchedule.team_id == team_id, DigestSchedule.channel_id == channel_id)
    return list(session.exec(stmt.order_by(col(DigestSchedule.queue))).all())


def remove(session: Session, team_id: str, channel_id: str, queue: str) -> bool:
    """Delete the channel's schedule of `queue`; False when there was none."""
    sched = session.exec(_of(team_id, channel_id, queue)).first()
    if sched is not None:
        session.delete(sched)
    return sched is not None


def put(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    queue: str,
    cadence: str,
    weekday: int | None,
    at: str,
    tz: str,
    created_by: str,
    now: datetime,
) -> tuple[DigestSchedule, bool]:
    """Make or change the channel's schedule of `queue`; the stored row, and True when new."""
    sched = session.exec(_of(team_id, channel_id, queue)).first()
    created = sched is None
    if sched is None:
        sched = DigestSchedule(
            team_id=team_id,
            channel_id=channel_id,
            queue=queue,
            cadence=cadence,
            at=at,
            created_by=created_by,
            created_at=now,
        )
    sched.cadence, sched.weekday, sched.at, sched.tz = cadence, weekday, at, tz
    session.add(sched)
    session.flush()
    return sched, created
