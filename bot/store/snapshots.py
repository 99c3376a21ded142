"""Job snapshots in the store: the last observed state of every job, what the poller reads before a
listing (watermark, live jobs, priors) and writes in the poll's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.core.snapshot import Prior, fingerprint
from bot.store.db import Database, chunks, insert_ignore, upsert
from bot.store.refs import ref_rows
from bot.store.tables import JobRef, JobSnapshot, QueueState, TransitionRecord
from providers import Job, JobStatus


@dataclass(frozen=True)
class QueueView:
    """What the poller needs to know about a queue before listing it."""

    since: datetime | None
    baseline: bool
    live: list[Job]


def baseline_due(db: Database, queue: str) -> bool:
    """Whether the queue's next poll is its baseline (nothing stored for it yet)."""
    with db.read() as session:
        state = session.get(QueueState, queue)
    return state is None or state.baseline_at is None


def queue_view(db: Database, queue: str) -> QueueView:
    """The watermark, whether a baseline is due, and the live jobs to re-check."""
    with db.read() as session:
        state = session.get(QueueState, queue)
        rows = session.exec(
            select(JobSnapshot.data).where(JobSnapshot.queue == queue, col(JobSnapshot.live).is_(True))
        ).all()
    live = [Job.stored(data) for data in rows]
    baseline = state is None or state.baseline_at is None
    return QueueView(since=None if baseline else state.watermark if state else None, baseline=baseline, live=live)


def priors(db: Database, queue: str, ids: Sequence[str]) -> dict[str, Prior]:
    """The stored status and fingerprint of the given jobs (only those, in chunks)."""
    found: dict[str, Prior] = {}
    with db.read() as session:
        for chunk in chunks(ids):
            rows = session.exec(
                select(JobSnapshot.job_id, JobSnapshot.status, JobSnapshot.fingerprint).where(
                    JobSnapshot.queue == queue, col(JobSnapshot.job_id).in_(chunk)
                )
            ).all()
            for job_id, status, fp in rows:
                found[job_id] = Prior(JobStatus(status), fp)
    return found


def stored_jobs(db: Database, queue: str, ids: Sequence[str]) -> dict[str, Job]:
    """The stored snapshots of the given jobs (only those, in chunks), as jobs."""
    with db.read() as session:
        return {job.id: job for job in jobs_of(session, queue, ids)}


def jobs_of(session: Session, queue: str, ids: Sequence[str]) -> list[Job]:
    """The snapshots of those of `ids` the store still has, as jobs."""
    found: list[Job] = []
    for chunk in chunks(ids):
        rows = session.exec(
            select(JobSnapshot.data).where(JobSnapshot.queue == queue, col(JobSnapshot.job_id).in_(chunk))
        ).all()
        found += [Job.stored(data) for data in rows]
    return found


def snapshot_row(job: Job, now: datetime) -> dict[str, object]:
    """A JobSnapshot row for `job`."""
    return {
        "queue": job.queue,
        "job_id": job.id,
        "name": job.name,
        "status": job.status.value,
        "live": not job.status.terminal,
        "fingerprint": fingerprint(job),
        "created_at": job.created_at,
        "seen_at": now,
        "data": job.model_dump_json(),
    }


def write(session: Session, jobs: Sequence[Job], now: datetime) -> None:
    """Store `jobs` as their snapshots (seen at `now`), with the strings that name each (job_ref)."""
    for chunk in chunks(jobs):
        upsert(session, JobSnapshot, [snapshot_row(j, now) for j in chunk], keys=["queue", "job_id"])
        insert_ignore(session, JobRef, [row for j in chunk for row in ref_rows(j)])


def record_changes(session: Session, changes: Sequence[tuple[Job, JobStatus | None]], now: datetime) -> None:
    """Keep each (job, old status) change in the transition history (`/jobs subscribe --dry-run`
    replays it, bot/features/routing.py): one compact row per status change."""
    rows = [
        {
            "queue": job.queue,
            "job_id": job.id,
            "name": job.name,
            "old": old.value if old else None,
            "new": job.status.value,
            "reason": job.reason,
            "at": now,
        }
        for job, old in changes
    ]
    for chunk in chunks(rows):
        session.execute(insert(TransitionRecord), list(chunk))


def stored_job(session: Session, queue: str, job_id: str) -> Job | None:
    """The job as last stored, if it is."""
    row = session.get(JobSnapshot, (queue, job_id))
    return None if row is None else Job.stored(row.data)


def _of(queue: str, status: JobStatus | None) -> SelectOfScalar[JobSnapshot]:
    stmt = select(JobSnapshot).where(JobSnapshot.queue == queue)
    return stmt if status is None else stmt.where(JobSnapshot.status == status.value)


def newest(session: Session, queue: str, *, limit: int, status: JobStatus | None = None) -> list[Job]:
    """The newest stored jobs of `queue` (of one canonical status, or all): by creation time,
    unknown last, then by id."""
    order = (col(JobSnapshot.created_at).desc().nulls_last(), col(JobSnapshot.job_id))
    rows = session.exec(_of(queue, status).order_by(*order).limit(limit)).all()
    return [Job.stored(r.data) for r in rows]


def count(session: Session, queue: str, *, status: JobStatus | None = None) -> int:
    """How many jobs of `queue` are stored (of one canonical status, or all)."""
    return int(session.exec(select(func.count()).select_from(_of(queue, status).subquery())).one())
