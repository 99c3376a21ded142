"""Mutes in the store, and the outbox rows they hold (bot/features/mutes.py holds the use cases)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from bot.core.mutes import MuteChange, Muted
from bot.core.outbox import OutboxState
from bot.core.policy import Silenced
from bot.store.db import chunks
from bot.store.tables import Mute, OutboxItem


def silenced(session: Session, queue: str, now: datetime) -> Silenced:
    """The (team, channel, job id) mutes of `queue` running at `now`; job id "" mutes the whole queue."""
    rows = session.exec(select(Mute).where(Mute.queue == queue, col(Mute.until) > now)).all()
    return frozenset((m.team_id, m.channel_id, m.job_id) for m in rows)


def _muted(row: Mute) -> Muted:
    return Muted(
        id=row.id or 0,
        team_id=row.team_id,
        channel_id=row.channel_id,
        queue=row.queue,
        job_id=row.job_id,
        job_name=row.job_name,
        until=row.until,
        created_at=row.created_at,
    )


def active(session: Session, *, team_id: str, channel_id: str, queue: str | None, now: datetime) -> list[Muted]:
    """This channel's mutes still running (of one queue, or all), by queue then job."""
    stmt = select(Mute).where(Mute.team_id == team_id, Mute.channel_id == channel_id, col(Mute.until) > now)
    if queue is not None:
        stmt = stmt.where(Mute.queue == queue)
    return [_muted(m) for m in session.exec(stmt.order_by(col(Mute.queue), col(Mute.job_id))).all()]


def put(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    queue: str,
    job_id: str,
    job_name: str,
    user_id: str,
    trigger_id: str,
    seconds: int,
    now: datetime,
) -> tuple[Muted, MuteChange]:
    """Start (`new`) or extend (`extended`) a mute: one row per (team, channel, queue, job).

    A Slack retry or replay of the same request (same trigger_id) changes nothing (`replay`).
    """
    mute = session.exec(
        select(Mute).where(
            Mute.team_id == team_id,
            Mute.channel_id == channel_id,
            Mute.queue == queue,
            Mute.job_id == job_id,
        )
    ).first()
    if mute is not None and trigger_id and mute.trigger_id == trigger_id:
        return _muted(mute), MuteChange.REPLAY
    change = MuteChange.EXTENDED if mute else MuteChange.NEW
    if mute is None:
        mute = Mute(
            team_id=team_id,
            channel_id=channel_id,
            queue=queue,
            job_id=job_id,
            job_name=job_name,
            created_by=user_id,
            created_at=now,
            until=now,
        )
    mute.until = now + timedelta(seconds=seconds)
    mute.trigger_id = trigger_id
    session.add(mute)
    session.flush()
    return _muted(mute), change


def held_ids(session: Session, mute: Muted) -> set[int]:
    """The outbox rows `mute` holds: the channel's rows of its queue (or job) muted since it began."""
    stmt = select(OutboxItem.id).where(
        OutboxItem.team_id == mute.team_id,
        OutboxItem.channel_id == mute.channel_id,
        OutboxItem.queue == mute.queue,
        OutboxItem.state == OutboxState.MUTED.value,
        col(OutboxItem.created_at) >= mute.created_at,
    )
    if mute.job_id:
        stmt = stmt.where(OutboxItem.job_id == mute.job_id)
    return {i for i in session.exec(stmt).all() if i is not None}


def silence(session: Session, ids: Collection[int]) -> None:
    """Mark these held outbox rows `silenced` (their mute ended; its summary counts them)."""
    for chunk in chunks(sorted(ids)):
        session.execute(
            update(OutboxItem).where(col(OutboxItem.id).in_(chunk)).values(state=OutboxState.SILENCED.value)
        )


def remove(session: Session, mutes: Sequence[Muted]) -> None:
    """Delete these mutes."""
    session.execute(delete(Mute).where(col(Mute.id).in_([m.id for m in mutes])))


def any_expired(session: Session, now: datetime) -> bool:
    """Whether any mute's time is up at `now` (a cheap read)."""
    return session.exec(select(Mute.id).where(col(Mute.until) <= now)).first() is not None


def expired(session: Session, now: datetime) -> list[Muted]:
    """Every mute whose time is up at `now`."""
    return [_muted(m) for m in session.exec(select(Mute).where(col(Mute.until) <= now)).all()]
