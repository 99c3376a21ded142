"""Job threads in the store: the parent message of a job's alerts in one channel."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.store.tables import JobThread


def channels_with_thread(session: Session, queue: str, job_id: str) -> set[tuple[str, str]]:
    """The (team, channel) pairs where the job has a thread."""
    rows = session.exec(select(JobThread).where(JobThread.queue == queue, JobThread.job_id == job_id))
    return {(t.team_id, t.channel_id) for t in rows}
