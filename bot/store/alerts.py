"""A workspace's recent alerts in the store, as the App Home lists them (bot/slack/listeners.py
`home_view`): the newest alert rows of the outbox and what became of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.outbox import OutboxKind, OutboxState
from bot.store.tables import OutboxItem
from providers import Job


@dataclass(frozen=True)
class RecentAlert:
    """One alert: its job's name, the change, and where its row stands (sent, pending, muted, dead...)."""

    job: str
    queue: str
    old: str | None
    new: str
    state: OutboxState
    at: datetime


def _job_name(payload: str, fallback: str) -> str:
    try:
        return Job.stored(payload).name
    except ValueError:
        return fallback


def newest(session: Session, team_id: str, *, limit: int) -> list[RecentAlert]:
    """The team's newest alerts, whatever became of them, newest first."""
    rows = session.exec(
        select(OutboxItem)
        .where(OutboxItem.team_id == team_id, OutboxItem.kind == OutboxKind.ALERT.value)
        .order_by(col(OutboxItem.id).desc())
        .limit(limit)
    ).all()
    return [
        RecentAlert(
            _job_name(r.payload, r.job_id), r.queue, r.old_status, r.new_status, OutboxState(r.state), r.created_at
        )
        for r in rows
    ]
