"""What retention deletes (bot/pipeline/prune.py), in bounded batches inside the caller's
transaction: jobs not seen for a while with what hangs off them, settled outbox rows, settled
log-tail requests and old transitions. Each function returns how many it deleted (for a job: how
many jobs)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, tuple_
from sqlmodel import Session, col, select

from bot.core.log_tails import LogTailState
from bot.core.outbox import SETTLED
from bot.store.tables import (
    JobRef,
    JobSnapshot,
    JobThread,
    LogTailRequest,
    OutboxItem,
    StepWait,
    StopRequest,
    TransitionRecord,
    Watch,
)


def forget_jobs(session: Session, before: datetime, limit: int) -> int:
    """Up to `limit` terminal jobs last seen before `before`: their snapshots, thread pointers,
    job_ref, stop_request and watch rows."""
    keys = session.exec(
        select(JobSnapshot.queue, JobSnapshot.job_id)
        .where(col(JobSnapshot.live).is_(False), JobSnapshot.seen_at < before)
        .limit(limit)
    ).all()
    if keys:
        pairs = [(q, j) for q, j in keys]
        session.execute(delete(JobThread).where(tuple_(col(JobThread.queue), col(JobThread.job_id)).in_(pairs)))
        session.execute(delete(JobRef).where(tuple_(col(JobRef.queue), col(JobRef.job_id)).in_(pairs)))
        session.execute(delete(StopRequest).where(tuple_(col(StopRequest.queue), col(StopRequest.job_id)).in_(pairs)))
        session.execute(delete(Watch).where(tuple_(col(Watch.queue), col(Watch.job_id)).in_(pairs)))
        session.execute(delete(JobSnapshot).where(tuple_(col(JobSnapshot.queue), col(JobSnapshot.job_id)).in_(pairs)))
    return len(keys)


def settled_outbox(session: Session, before: datetime, limit: int) -> int:
    """Up to `limit` settled outbox rows (core.outbox.SETTLED) written before `before`."""
    ids = session.exec(
        select(OutboxItem.id)
        .where(col(OutboxItem.state).in_(sorted(SETTLED)), OutboxItem.created_at < before)
        .limit(limit)
    ).all()
    if ids:
        session.execute(delete(OutboxItem).where(col(OutboxItem.id).in_(ids)))
    return len(ids)


def settled_log_tails(session: Session, before: datetime, limit: int) -> int:
    """Up to `limit` log-tail requests no longer pending, written before `before`."""
    tails = session.exec(
        select(LogTailRequest.id)
        .where(LogTailRequest.state != LogTailState.PENDING, LogTailRequest.created_at < before)
        .limit(limit)
    ).all()
    if tails:
        session.execute(delete(LogTailRequest).where(col(LogTailRequest.id).in_(tails)))
    return len(tails)


def done_step_waits(session: Session, before: datetime, limit: int) -> int:
    """Up to `limit` finished "Wait for job to finish" runs (bot/store/steps.py) that began before
    `before`: their completion is an outbox row, pruned like the others."""
    done = session.exec(
        select(StepWait.id).where(StepWait.state == "done", StepWait.created_at < before).limit(limit)
    ).all()
    if done:
        session.execute(delete(StepWait).where(col(StepWait.id).in_(done)))
    return len(done)


def transitions(session: Session, before: datetime, limit: int) -> int:
    """Up to `limit` transitions of the history older than `before`."""
    old = session.exec(select(TransitionRecord.id).where(TransitionRecord.at < before).limit(limit)).all()
    if old:
        session.execute(delete(TransitionRecord).where(col(TransitionRecord.id).in_(old)))
    return len(old)
