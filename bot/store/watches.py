"""Watches in the store (bot/features/watching.py holds the use cases)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.store.db import chunks
from bot.store.tables import JobSnapshot, Watch


def of_jobs(session: Session, queue: str, job_ids: Sequence[str]) -> list[Watch]:
    """Every watch of the given jobs of `queue`."""
    found: list[Watch] = []
    for chunk in chunks(job_ids):
        found.extend(session.exec(select(Watch).where(Watch.queue == queue, col(Watch.job_id).in_(chunk))).all())
    return found


def end(session: Session, watch: Watch) -> None:
    """Delete a watch (its job ended; the watcher's last DM is written in the same transaction)."""
    session.delete(watch)


@dataclass(frozen=True)
class Watched:
    """One of a person's watches: which job, and what to call it."""

    id: int
    queue: str
    job_id: str
    job_name: str


def _of(team_id: str, user_id: str) -> SelectOfScalar[Watch]:
    return select(Watch).where(Watch.team_id == team_id, Watch.user_id == user_id)


def watches(session: Session, team_id: str, user_id: str, queue: str, job_id: str) -> bool:
    """Whether the person watches this job."""
    return session.exec(_of(team_id, user_id).where(Watch.queue == queue, Watch.job_id == job_id)).first() is not None


def count(session: Session, team_id: str, user_id: str, *, limit: int) -> int:
    """How many jobs the person watches, counted up to `limit`."""
    return len(session.exec(_of(team_id, user_id).limit(limit)).all())


def add(
    session: Session,
    *,
    team_id: str,
    user_id: str,
    queue: str,
    job_id: str,
    job_name: str,
    now: datetime,
    trigger_id: str,
) -> None:
    """Add a watch (a watch of the same job committed meanwhile raises Conflict at commit)."""
    session.add(
        Watch(
            team_id=team_id,
            user_id=user_id,
            queue=queue,
            job_id=job_id,
            job_name=job_name,
            created_at=now,
            trigger_id=trigger_id,
        )
    )


def in_queue(session: Session, team_id: str, user_id: str, queue: str) -> list[Watched]:
    """The person's watches of jobs of `queue`."""
    rows = session.exec(_of(team_id, user_id).where(Watch.queue == queue)).all()
    return [Watched(w.id or 0, w.queue, w.job_id, w.job_name) for w in rows]


def remove(session: Session, watch_id: int) -> None:
    """Delete one watch."""
    session.execute(delete(Watch).where(col(Watch.id) == watch_id))


def watched_jobs(session: Session, team_id: str, user_id: str) -> set[tuple[str, str]]:
    """(queue, job id) of every job the person watches."""
    return {(w.queue, w.job_id) for w in session.exec(_of(team_id, user_id)).all()}


def listing(session: Session, team_id: str, user_id: str) -> list[tuple[str, str, str, str]]:
    """(queue, job id, job name, last polled status) of each of the person's watches, oldest first;
    the name kept with the watch and no status when the job is no longer stored."""
    found = session.exec(
        select(Watch, JobSnapshot.name, JobSnapshot.status)
        .join(
            JobSnapshot,
            (col(JobSnapshot.queue) == col(Watch.queue)) & (col(JobSnapshot.job_id) == col(Watch.job_id)),
            isouter=True,
        )
        .where(Watch.team_id == team_id, Watch.user_id == user_id)
        .order_by(col(Watch.id))
    ).all()
    return [(w.queue, w.job_id, name or w.job_name, status or "") for w, name, status in found]
