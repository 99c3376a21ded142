"""Job threads in the store: the parent message of a job's alerts in one channel."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.store.db import insert_ignore
from bot.store.tables import JobThread, OutboxItem


def channels_with_thread(session: Session, queue: str, job_id: str) -> set[tuple[str, str]]:
    """The (team, channel) pairs where the job has a thread."""
    rows = session.exec(select(JobThread).where(JobThread.queue == queue, JobThread.job_id == job_id))
    return {(t.team_id, t.channel_id) for t in rows}


def of(session: Session, row: OutboxItem) -> JobThread | None:
    """The thread of the job of `row` in the row's channel, if its alert was posted."""
    return session.get(JobThread, (row.team_id, row.channel_id, row.queue, row.job_id))


def start(session: Session, row: OutboxItem, ts: str) -> None:
    """`row`, posted as the message `ts`, starts its job's thread in its channel (a thread already
    started is kept)."""
    insert_ignore(
        session,
        JobThread,
        [
            {
                "team_id": row.team_id,
                "channel_id": row.channel_id,
                "queue": row.queue,
                "job_id": row.job_id,
                "parent_ts": ts,
                "parent_alert_id": row.alert_id,
            }
        ],
    )
