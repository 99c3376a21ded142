"""Mutes, after Alertmanager's silences: while one is active the pipeline records the channel's
alerts as `muted` (bot/core/policy.py `hold_muted`, applied by bot/pipeline/owed.py); when it
ends, by expiry or `unmute`, the channel gets one notice saying how many alerts were held back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.core.alert_ids import unmuted_id
from bot.core.mutes import Muted
from bot.core.outbox import OutboxRow
from bot.store import mutes as stored
from bot.store import outbox
from bot.store.db import Database
from bot.store.session import Session


def end(session: Session, mutes: Sequence[Muted], *, why: str, now: datetime) -> int:
    """Delete these mutes (all of one channel) and owe the channel one summary; returns alerts held."""
    if not mutes:
        return 0
    ids: set[int] = set()
    for m in mutes:
        ids |= stored.held_ids(session, m)
    total = len(ids)
    # Counted once: an alert both a queue mute and a job mute held is in one summary only.
    stored.silence(session, ids)
    if total:
        first = mutes[0]
        what = ", ".join(m.label for m in mutes)
        alerts = "1 alert was" if total == 1 else f"{total} alerts were"
        text = f"Mute of {what} ended ({why}): {alerts} muted meanwhile. /jobs list {first.queue} shows the jobs."
        key = unmuted_id((m.id, m.created_at) for m in mutes)
        notice = OutboxRow.notice(
            key, text, team_id=first.team_id, channel_id=first.channel_id, queue=first.queue, now=now
        )
        outbox.insert(session, [notice])
    stored.remove(session, mutes)
    return total


def expire(db: Database, now: datetime) -> int:
    """End every mute whose time is up (the worker calls this each delivery round); returns how many."""
    with db.read() as session:
        due = stored.any_expired(session, now)
    if not due:
        return 0  # the common case stays a cheap read, without the writer lock
    with db.write() as session:
        mutes = stored.expired(session, now)
        for mute in mutes:
            end(session, [mute], why="expired", now=now)
        return len(mutes)
