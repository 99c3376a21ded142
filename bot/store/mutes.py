"""Mutes in the store (bot/features/mutes.py holds the use cases)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.policy import Silenced
from bot.store.tables import Mute


def silenced(session: Session, queue: str, now: datetime) -> Silenced:
    """The (team, channel, job id) mutes of `queue` running at `now`; job id "" mutes the whole queue."""
    rows = session.exec(select(Mute).where(Mute.queue == queue, col(Mute.until) > now)).all()
    return frozenset((m.team_id, m.channel_id, m.job_id) for m in rows)
