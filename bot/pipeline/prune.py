"""Retention: forget what is old so the store grows with activity, not with history.

Terminal job snapshots not seen to change for `retention` are deleted with their thread
pointers, job_ref, stop_request and watch rows, and settled outbox rows (core.outbox.SETTLED: sent, dead, muted,
silenced, digested) and settled log_tail requests older than `retention` go too, as does the transition
history older than TRANSITION_KEEP.
Live jobs, rows still owed (pending, sending) and the audit table are never pruned. A pruned job that a provider
lists again is not news: the diff stores it without an alert (`diff(forgotten_before=...)`).
Deletes run in bounded batches, each its own short transaction behind the lease's fence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, tuple_
from sqlmodel import col, select

from bot.core.log_tails import LogTailState
from bot.core.outbox import SETTLED
from bot.store.db import Database
from bot.store.lease import Fence
from bot.store.tables import (
    JobRef,
    JobSnapshot,
    JobThread,
    LogTailRequest,
    OutboxItem,
    StopRequest,
    TransitionRecord,
    Watch,
)

log = logging.getLogger(__name__)

BATCH = 2_000
TRANSITION_KEEP = timedelta(days=7)  # the transition history: this, or `retention` if shorter, but at least a day


@dataclass
class Pruned:
    """How many rows one prune removed."""

    snapshots: int = 0
    outbox: int = 0
    transitions: int = 0


def prune(db: Database, *, now: datetime, retention: timedelta, fence: Fence | None, max_batches: int = 50) -> Pruned:
    """Delete what is older than `retention`; bounded to `max_batches` batches per call."""
    cutoff = now - retention
    history_cutoff = now - max(min(retention, TRANSITION_KEEP), timedelta(days=1))  # dry-run replays 24 h
    done = Pruned()
    for _ in range(max_batches):
        with db.write() as session:
            if fence is not None:
                fence.check(session)
            keys = session.exec(
                select(JobSnapshot.queue, JobSnapshot.job_id)
                .where(col(JobSnapshot.live).is_(False), JobSnapshot.seen_at < cutoff)
                .limit(BATCH)
            ).all()
            if keys:
                pairs = [(q, j) for q, j in keys]
                session.execute(delete(JobThread).where(tuple_(col(JobThread.queue), col(JobThread.job_id)).in_(pairs)))
                session.execute(delete(JobRef).where(tuple_(col(JobRef.queue), col(JobRef.job_id)).in_(pairs)))
                session.execute(
                    delete(StopRequest).where(tuple_(col(StopRequest.queue), col(StopRequest.job_id)).in_(pairs))
                )
                session.execute(delete(Watch).where(tuple_(col(Watch.queue), col(Watch.job_id)).in_(pairs)))
                session.execute(
                    delete(JobSnapshot).where(tuple_(col(JobSnapshot.queue), col(JobSnapshot.job_id)).in_(pairs))
                )
            ids = session.exec(
                select(OutboxItem.id)
                .where(col(OutboxItem.state).in_(sorted(SETTLED)), OutboxItem.created_at < cutoff)
                .limit(BATCH)
            ).all()
            if ids:
                session.execute(delete(OutboxItem).where(col(OutboxItem.id).in_(ids)))
            tails = session.exec(
                select(LogTailRequest.id)
                .where(LogTailRequest.state != LogTailState.PENDING, LogTailRequest.created_at < cutoff)
                .limit(BATCH)
            ).all()
            if tails:
                session.execute(delete(LogTailRequest).where(col(LogTailRequest.id).in_(tails)))
            old = session.exec(
                select(TransitionRecord.id).where(TransitionRecord.at < history_cutoff).limit(BATCH)
            ).all()
            if old:
                session.execute(delete(TransitionRecord).where(col(TransitionRecord.id).in_(old)))
        done.snapshots += len(keys)
        done.outbox += len(ids)
        done.transitions += len(old)
        if len(keys) < BATCH and len(ids) < BATCH and len(old) < BATCH:
            break
    if done.snapshots or done.outbox:
        log.info("pruned snapshots=%d outbox=%d cutoff=%s", done.snapshots, done.outbox, cutoff.isoformat())
    return done
