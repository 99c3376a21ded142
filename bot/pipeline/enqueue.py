"""Stage 3: one transaction writes the new snapshot, the queue's cursor and health, and the outbox
rows the poll owes (bot/pipeline/owed.py), behind the lease's fence.

`commit_poll` takes one `PollCommit`: what the poll found (the diff, the live jobs, whether it is
the queue's baseline) and what the features decided about it (owners' Slack users, the queue's
history), with the queue's `QueueRules` from the configuration. A failed poll is `record_failure`.
Pushed changes (bot/pipeline/push.py) are committed by `commit_push` through the same steps.
Both check the diff against the jobs as their own transaction sees them (`against_stored`,
bot/pipeline/diff.py): a state older than the stored one is never written, and a change another
commit already announced is not announced again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from bot.core.alert_ids import DigestOrigin, outage_id, recovered_id
from bot.core.outbox import FOLDED, OutboxRow, OutboxState
from bot.core.owners import OwnerNotify
from bot.pipeline.diff import DiffResult, Guarded, Transition, against_stored
from bot.pipeline.digest import fold as fold_digest
from bot.pipeline.followup import follow_up_rows, withdraw_fixed
from bot.pipeline.owed import Told, owed
from bot.pipeline.usual import Flag, Normal
from bot.pipeline.usual import apply as apply_normal
from bot.store import log_tails, outbox, queues, snapshots, subscriptions
from bot.store.db import Database
from bot.store.lease import Fence
from providers import Job, JobStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueRules:
    """How a queue's news is told, from the configuration: the operators' channel (and workspace)
    for outage notices, the time zone of quiet hours that name none, how owners hear about their
    jobs (`[owners] notify`: dm, thread or off), whether failures get log tails, and after how
    many failed polls in a row the operators are told; a poll that owes one channel more than
    `digest_threshold` alerts and flags folds them into one digest (`[bot] digest_threshold`)."""

    ops_channel: str | None = None
    ops_team: str = ""
    timezone: str = "UTC"
    owner_notify: OwnerNotify = OwnerNotify.DM
    log_tail: bool = False
    failure_threshold: int = 3
    digest_threshold: int = 20  # more alerts and flags than this for one channel in one poll: one digest
    follow_up_group: str | None = None  # the user group a follow-up mentions when the owner is unknown
    owners_table: Mapping[str, str] = field(default_factory=dict)  # `[owners]`: owner value -> Slack user


@dataclass(frozen=True)
class PollCommit:
    """One successful poll, ready to commit: what it found and what the features decided.

    `result`: the diff (jobs to store, transitions). `live`: the queue's live jobs after this poll
    (slow and stuck flags are looked for among them: those that crossed their threshold after the
    queue's watermark before this poll, which commit_poll reads in its transaction). `baseline`:
    the queue's first poll (nothing is announced; its history is recorded sparingly).
    `owner_users`: job id -> the owner's Slack user id (bot/core/owners.py), for owner mentions,
    DMs and `--owner` filters. `normal`: the queue's history kept by the worker
    (bot/pipeline/usual.py); with it, finished jobs go into run_history, alerts carry what is usual,
    and slow or stuck jobs are flagged."""

    queue: str
    started_at: datetime
    result: DiffResult
    now: datetime
    live: Sequence[Job] = ()
    baseline: bool = False
    owner_users: Mapping[str, str] = field(default_factory=dict)
    normal: Normal | None = None
    rules: QueueRules = QueueRules()
    native_order: tuple[str, ...] = ()  # the adapter's status order (providers/events.py `stale`)


def commit_poll(db: Database, poll: PollCommit, *, fence: Fence | None) -> int:
    """Write the poll's snapshots, cursor, health and outbox rows in one transaction; returns rows enqueued."""
    with db.write() as session:
        if fence is not None:
            fence.check(session)
        before = queues.polled(session, poll.queue, started_at=poll.started_at, now=poll.now)
        guarded = _guarded(session, poll)
        return _write(session, poll, guarded.result, before, fence, recovered=True)


@dataclass(frozen=True)
class Pushed:
    """What a pushed change's commit did: outbox rows written, the jobs it stored anew, and those it
    dropped as older than the store's (`stale`); the rest were duplicates of what was stored.
    `ready` is False when the queue has no baseline yet: nothing was written."""

    enqueued: int = 0
    applied: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    ready: bool = True


def commit_push(db: Database, push: PollCommit, *, fence: Fence | None) -> Pushed:
    """Write pushed changes (a provider's events, bot/pipeline/push.py) exactly as a poll's are
    written: the same guard against the stored jobs, snapshots, history and outbox rows, in one
    transaction. A push is no poll: the queue's cursor and health stay as they are, and before the
    queue's baseline nothing is written (the baseline lists every job anyway)."""
    with db.write() as session:
        if fence is not None:
            fence.check(session)
        before = queues.health(session, push.queue)
        if not before.baselined:
            return Pushed(ready=False)
        guarded = _guarded(session, push)
        enqueued = _write(session, push, guarded.result, before, fence, recovered=False)
        queues.pushed(session, push.queue, now=push.now)
        return Pushed(enqueued, [j.id for j in guarded.result.upserts], guarded.stale)


def _guarded(session: Session, poll: PollCommit) -> Guarded:
    """The commit's diff checked against the jobs as its transaction sees them (bot/pipeline/diff.py)."""
    if poll.baseline:  # nothing is stored yet, and no push is applied before it
        return Guarded(poll.result, [])
    ids = [j.id for j in poll.result.upserts]
    stored = {j.id: j for j in snapshots.jobs_of(session, poll.queue, ids)} if ids else {}
    return against_stored(poll.result, stored, native_order=poll.native_order, baseline=poll.baseline)


def _write(
    session: Session,
    poll: PollCommit,
    result: DiffResult,
    before: queues.Health,
    fence: Fence | None,
    *,
    recovered: bool,
) -> int:
    """Snapshots, transition history, what is usual and the outbox rows of `result`; returns rows enqueued."""
    snapshots.write(session, result.upserts, poll.now)
    snapshots.record_changes(session, [(t.job, t.old) for t in result.transitions], poll.now)
    shown: list[Transition] = result.transitions
    flags: list[Flag] = []
    if poll.normal is not None:
        shown, flags = apply_normal(
            session,
            result=result,
            normal=poll.normal,
            live=poll.live,
            now=poll.now,
            since=before.watermark,
            baseline=poll.baseline,
            token=fence.token if fence is not None else None,
        )
    rules = poll.rules
    told = Told(
        queue=poll.queue,
        now=poll.now,
        changed=result.transitions,
        shown=shown,
        flags=flags,
        upserts=result.upserts,
        users=poll.owner_users,
        timezone=rules.timezone,
        owner_notify=rules.owner_notify,
        ops_team=rules.ops_team,
        log_tail=rules.log_tail,
        after_baseline=before.baselined,
        live=poll.live,
    )
    subs = subscriptions.for_queue(session, poll.queue)
    due = owed(session, subs, told)
    log_tails.request(session, [(t.alert_id, t.job) for t in due.log_tails], poll.now)
    rows = due.rows
    if before.baselined:  # bot/pipeline/followup.py: unclaimed failures past their subscription's time
        rows += follow_up_rows(
            session,
            subs,
            queue=poll.queue,
            now=poll.now,
            default_tz=rules.timezone,
            group=rules.follow_up_group,
            owners_table=rules.owners_table,
            pattern=poll.normal.pattern if poll.normal is not None else None,
        )
    if recovered and before.outage_notified and rules.ops_channel:
        text = f"Queue {poll.queue} is polling again after {before.failures} failed polls."
        rows.append(_notice(recovered_id(poll.queue, poll.started_at), text, poll.queue, rules, poll.now))
    written = outbox.insert(session, rows)
    if before.baselined:  # follow-ups not yet sent whose family this poll saw succeed are taken back
        withdraw_fixed(
            session,
            poll.queue,
            [t.job for t in result.transitions if t.job.status is JobStatus.SUCCEEDED],
            now=poll.now,
            pattern=poll.normal.pattern if poll.normal is not None else None,
        )
    _fold_bursts(session, rows, rules.digest_threshold, poll.now)
    return written


def _fold_bursts(session: Session, rows: Sequence[OutboxRow], threshold: int, now: datetime) -> None:
    """Fold, per channel, this poll's pending alerts and flags into one digest when there are more
    than `threshold` of them: the decision is made for the poll's changes as a whole, before any of
    them can be posted (they are not committed yet, so no delivery round can claim one meanwhile).
    Rows held for quiet hours go to their own digest when the window ends; a burst spread over
    several polls is still folded by delivery (bot/pipeline/deliver.py `fold_digests`)."""
    burst: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        if row.kind in FOLDED and row.state is OutboxState.PENDING:
            burst[(row.team_id, row.channel_id)].append(row.alert_id)
    crowded = {key: ids for key, ids in burst.items() if len(ids) > threshold}
    if not crowded:  # the common poll: nothing to fold, no map of its jobs to build
        return
    jobs = {r.alert_id: r.job for r in rows if r.job is not None}
    for (team, channel), alert_ids in crowded.items():
        written = outbox.written_now(session, team, channel, alert_ids, now)
        if len(written) > threshold:
            chunks = fold_digest(
                session, written, origin=DigestOrigin.BURST, team=team, channel=channel, now=now, jobs=jobs
            )
            log.info("digest channel=%s rows=%d replies=%d at=enqueue", channel, len(written), chunks)


def _notice(key: str, text: str, queue: str, rules: QueueRules, now: datetime) -> OutboxRow:
    return OutboxRow.notice(key, text, team_id=rules.ops_team, channel_id=rules.ops_channel or "", queue=queue, now=now)


def outage_text(queue: str, failures: int, error: str, remedy: str | None) -> str:
    """The operator notice for a queue that stopped polling."""
    if remedy is None:
        return f"Queue {queue} has failed {failures} polls in a row: {error}"
    return (
        f"Queue {queue} cannot poll: {remedy}. Error: {error}. "
        "It is retried every interval; a notice follows when it polls again."
    )


def record_failure(
    db: Database,
    *,
    queue: str,
    error: str,
    now: datetime,
    fence: Fence | None,
    rules: QueueRules,
    remedy: str | None = None,
) -> bool:
    """Count a failed poll; returns True when this failure crosses the threshold (notice sent once).

    A failure with a `remedy` (one that waiting will not cure, such as refused credentials) crosses
    it at once, and its notice says what to check.
    """
    with db.write() as session:
        if fence is not None:
            fence.check(session)
        crossed = queues.failed(
            session, queue, error=error, now=now, threshold=rules.failure_threshold, at_once=remedy is not None
        )
        if crossed is not None and rules.ops_channel:
            text = outage_text(queue, crossed.failures, error, remedy)
            outbox.insert(session, [_notice(outage_id(queue, now), text, queue, rules, now)])
        return crossed is not None
