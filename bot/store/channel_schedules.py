"""A channel's scheduled digests in the store, as `/jobs digest` changes them and `/jobs
subscriptions` lists them (bot/features/channel_settings.py, bot/features/queries.py); what the
schedules owe and when is bot/features/schedules.py's."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.store.tables import DigestSchedule


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
