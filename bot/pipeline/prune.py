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

from bot.store import pruning
from bot.store.db import Database
from bot.store.lease import Fence

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
            jobs = pruning.forget_jobs(session, cutoff, BATCH)
            outbox = pruning.settled_outbox(session, cutoff, BATCH)
            pruning.settled_log_tails(session, cutoff, BATCH)
            pruning.done_step_waits(session, cutoff, BATCH)
            transitions = pruning.transitions(session, history_cutoff, BATCH)
        done.snapshots += jobs
        done.outbox += outbox
        done.transitions += transitions
        if jobs < BATCH and outbox < BATCH and transitions < BATCH:
            break
    if done.snapshots or done.outbox:
        log.info("pruned snapshots=%d outbox=%d cutoff=%s", done.snapshots, done.outbox, cutoff.isoformat())
    return done
