"""Mutes, after Alertmanager's silences: while one is active the pipeline records the channel's
alerts as `muted` (bot/core/policy.py `hold_muted`, applied by bot/pipeline/owed.py); when it
ends, by expiry or `unmute`, the channel gets one notice saying how many alerts were held back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.core.outbox import OutboxRow, OutboxState, unmuted_id
from bot.features.access import Actor
from bot.store import outbox
from bot.store.db import Database
from bot.store.tables import Mute, OutboxItem


def active(session: Session, *, team_id: str, channel_id: str, queue: str | None, now: datetime) -> list[Mute]:
    """This channel's mutes still running (of one queue, or all)."""
    stmt = select(Mute).where(Mute.team_id == team_id, Mute.channel_id == channel_id, col(Mute.until) > now)
    if queue is not None:
        stmt = stmt.where(Mute.queue == queue)
    return list(session.exec(stmt.order_by(col(Mute.queue), col(Mute.job_id))).all())


def put(
    session: Session, actor: Actor, *, queue: str, job_id: str, job_name: str, seconds: int, now: datetime
) -> tuple[Mute, str]:
    """Start (`new`) or extend (`extended`) a mute: one row per (team, channel, queue, job).

    A Slack retry or replay of the same request (same trigger_id) changes nothing (`replay`).
    """
    mute = session.exec(
        select(Mute).where(
            Mute.team_id == actor.team_id,
            Mute.channel_id == actor.channel_id,
            Mute.queue == queue,
            Mute.job_id == job_id,
        )
    ).first()
    if mute is not None and actor.trigger_id and mute.trigger_id == actor.trigger_id:
        return mute, "replay"
    state = "extended" if mute else "new"
    if mute is None:
        mute = Mute(
            team_id=actor.team_id,
            channel_id=actor.channel_id,
            queue=queue,
            job_id=job_id,
            job_name=job_name,
            created_by=actor.user_id,
            created_at=now,
            until=now,
        )
    mute.until = now + timedelta(seconds=seconds)
    mute.trigger_id = actor.trigger_id
    session.add(mute)
    session.flush()
    return mute, state


def _held_ids(session: Session, mute: Mute) -> set[int]:
    stmt = select(OutboxItem.id).where(
        OutboxItem.team_id == mute.team_id,
        OutboxItem.channel_id == mute.channel_id,
        OutboxItem.queue == mute.queue,
        OutboxItem.state == "muted",
        col(OutboxItem.created_at) >= mute.created_at,
    )
    if mute.job_id:
        stmt = stmt.where(OutboxItem.job_id == mute.job_id)
    return {i for i in session.exec(stmt).all() if i is not None}


def label(mute: Mute) -> str:
    """`ml` or `job bert-1 in ml` (plain text; render escapes it)."""
    return f"job {mute.job_name or mute.job_id} in {mute.queue}" if mute.job_id else mute.queue


def end(session: Session, mutes: Sequence[Mute], *, why: str, now: datetime) -> int:
    """Delete these mutes (all of one channel) and owe the channel one summary; returns alerts held."""
    if not mutes:
        return 0
    ids: set[int] = set()
    for m in mutes:
        ids |= _held_ids(session, m)
    total = len(ids)
    # Counted once: an alert both a queue mute and a job mute held is in one summary only.
    for start in range(0, len(ids), 500):
        chunk = sorted(ids)[start : start + 500]
        session.execute(
            update(OutboxItem).where(col(OutboxItem.id).in_(chunk)).values(state=OutboxState.SILENCED.value)
        )
    if total:
        first = mutes[0]
        what = ", ".join(label(m) for m in mutes)
        alerts = "1 alert was" if total == 1 else f"{total} alerts were"
        text = f"Mute of {what} ended ({why}): {alerts} muted meanwhile. /jobs list {first.queue} shows the jobs."
        key = unmuted_id((m.id, m.created_at) for m in mutes)
        notice = OutboxRow.notice(
            key, text, team_id=first.team_id, channel_id=first.channel_id, queue=first.queue, now=now
        )
        outbox.insert(session, [notice])
    for mute in mutes:
        session.delete(mute)
    return total


def expire(db: Database, now: datetime) -> int:
    """End every mute whose time is up (the worker calls this each delivery round); returns how many."""
    with db.read() as session:
        due = session.exec(select(Mute.id).where(col(Mute.until) <= now)).first()
    if due is None:
        return 0  # the common case stays a cheap read, without the writer lock
    with db.write() as session:
        mutes = session.exec(select(Mute).where(col(Mute.until) <= now)).all()
        for mute in mutes:
            end(session, [mute], why="expired", now=now)
        return len(mutes)
