"""Stage 3: one transaction writes the new snapshot, the queue's cursor and the outbox rows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session, col, select

from bot.blocks.notes import mention_text
from bot.core import owners
from bot.core.outbox import OutboxRow, TextPayload, outage_id, recovered_id
from bot.core.policy import hold_quiet
from bot.core.subscriptions import Subscribed
from bot.pipeline.diff import DiffResult, Transition
from bot.pipeline.usual import Flag, Normal, flag_rows
from bot.pipeline.usual import apply as apply_normal
from bot.store import subscriptions
from bot.store.db import Database, insert_ignore, upsert
from bot.store.lease import Fence
from bot.store.refs import ref_rows
from bot.store.snapshots import snapshot_row
from bot.store.tables import (
    JobRef,
    JobSnapshot,
    JobThread,
    LogTailRequest,
    Mute,
    OutboxItem,
    QueueState,
    TransitionRecord,
    Watch,
)
from providers import Job, JobStatus
from providers.attempts import attempt_of, retry_text

LOG_TAIL_ON = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})  # statuses whose alerts get a log tail
CHUNK = 500  # rows per statement: SQLite caps bound variables (250,000 since 3.32; 32,766 before)


def alert_rows(
    subs: Iterable[Subscribed],
    transitions: Iterable[Transition],
    now: datetime,
    owner_users: Mapping[str, str] | None = None,
) -> list[dict[str, object]]:
    """One pending outbox row per (transition x subscribed channel that wants it); `owner_users`:
    job id -> its owner's Slack user id, for subscriptions with an owner filter. A quiet transition
    (within a provider's retry, bot/pipeline/diff.py) gets none."""
    rows: list[dict[str, object]] = []
    active = [s for s in subs if s.active]
    users = owner_users or {}
    for t in transitions:
        if t.quiet:
            continue
        for sub in active:
            if not sub.filter.wants(t.job, users.get(t.job.id)):
                continue
            rows.append(
                {
                    "alert_id": t.alert_id,
                    "kind": "alert",
                    "team_id": sub.team_id,
                    "channel_id": sub.channel_id,
                    "queue": t.job.queue,
                    "job_id": t.job.id,
                    "old_status": t.old.value if t.old else None,
                    "new_status": t.job.status.value,
                    "payload": t.job.model_dump_json(),
                    "state": "pending",
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    return rows


def retry_rows(
    session: Session,
    subs: Iterable[Subscribed],
    jobs: Iterable[Job],
    alerts: Sequence[Mapping[str, object]],
    now: datetime,
) -> list[dict[str, object]]:
    """The thread notes owed for failed attempts that the provider retries (providers/attempts.py).

    `jobs`: the jobs this poll stores anew. Each live job on attempt n > 1 owes one note, "attempt
    n-1 of N failed: <cause>, retrying", to each active subscribed channel whose name filter takes
    it and that has a thread for the job (or gets its first alert about the job in this poll). Its
    alert_id `retry:<queue>:<job id>:<n-1>` makes the outbox's unique key keep it to one per attempt
    and channel, however often the job is stored again and across restarts. A note is thread-only:
    delivery never posts it at the channel's top level; a muted channel gets none.
    """
    retrying = [(job, text) for job in jobs if (text := retry_text(job)) is not None]
    if not retrying:
        return []
    active = [s for s in subs if s.active]
    first = {(str(a["channel_id"]), str(a["job_id"])): str(a["alert_id"]) for a in alerts if a["kind"] == "alert"}
    rows: list[dict[str, object]] = []
    for job, text in retrying:
        threads = {
            (t.team_id, t.channel_id)
            for t in session.exec(select(JobThread).where(JobThread.queue == job.queue, JobThread.job_id == job.id))
        }
        for sub in active:
            after = first.get((sub.channel_id, job.id))
            if (sub.team_id, sub.channel_id) not in threads and after is None:
                continue
            if not sub.filter.wants_name(job.name):
                continue
            rows.append(
                {
                    "alert_id": f"retry:{job.queue}:{job.id}:{attempt_of(job) - 1}",
                    "kind": "note",
                    "team_id": sub.team_id,
                    "channel_id": sub.channel_id,
                    "queue": job.queue,
                    "job_id": job.id,
                    "old_status": None,
                    "new_status": job.status.value,
                    "payload": TextPayload(text, thread_only=True, after=after or "").dump(),
                    "state": "pending",
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    return rows


def history_rows(transitions: Iterable[Transition], now: datetime) -> list[dict[str, object]]:
    """The transition history (for `--dry-run`, bot/features/routing.py): one compact row per status change."""
    return [
        {
            "queue": t.job.queue,
            "job_id": t.job.id,
            "name": t.job.name,
            "old": t.old.value if t.old else None,
            "new": t.job.status.value,
            "reason": t.job.reason,
            "at": now,
        }
        for t in transitions
    ]


def hold_muted(session: Session, rows: list[dict[str, object]], *, queue: str, now: datetime) -> None:
    """Alerts for a muted channel+queue(+job) are recorded as `muted`: kept, never posted."""
    silenced = {
        (m.team_id, m.channel_id, m.job_id)
        for m in session.exec(select(Mute).where(Mute.queue == queue, col(Mute.until) > now)).all()
    }
    for row in rows:
        team, channel = row["team_id"], row["channel_id"]
        if {(team, channel, ""), (team, channel, row.get("job_id", ""))} & silenced:
            row["state"] = "muted"


def dm_row(*, alert_id: str, team_id: str, user_id: str, t: Transition, now: datetime) -> dict[str, object]:
    """An outbox row for a direct message to one person about one job: `channel_id` is the user's
    id until delivery opens the IM (conversations.open)."""
    return {
        "alert_id": alert_id,
        "kind": "dm",
        "team_id": team_id,
        "channel_id": user_id,
        "queue": t.job.queue,
        "job_id": t.job.id,
        "old_status": t.old.value if t.old else None,
        "new_status": t.job.status.value,
        "payload": t.job.model_dump_json(),
        "state": "pending",
        "next_attempt_at": now,
        "created_at": now,
    }


def watch_rows(
    session: Session, queue: str, transitions: Sequence[Transition], now: datetime
) -> list[dict[str, object]]:
    """The direct messages a poll owes the people watching its jobs, and the end of their watches.

    A watched job that ends gets one DM per watcher and the watch is deleted (in the poll's
    transaction); one that moves from queued to running gets one DM too, keyed by the job so a
    job that runs twice says so once. Channel mutes do not hold DMs back.
    """
    moved = {t.job.id: t for t in transitions if t.job.status.terminal or _started(t)}
    rows: list[dict[str, object]] = []
    ids = list(moved)
    for start in range(0, len(ids), CHUNK):
        watches = session.exec(
            select(Watch).where(Watch.queue == queue, col(Watch.job_id).in_(ids[start : start + CHUNK]))
        ).all()
        for watch in watches:
            t = moved[watch.job_id]
            if t.job.status.terminal:
                key = f"dm-end:{t.alert_id}"
                session.delete(watch)
            else:
                key = "dm-run:" + hashlib.sha256(f"{queue}|{t.job.id}".encode()).hexdigest()[:32]
            rows.append(dm_row(alert_id=key, team_id=watch.team_id, user_id=watch.user_id, t=t, now=now))
    return rows


def owner_rows(
    alerts: Iterable[Mapping[str, object]],
    transitions: Sequence[Transition],
    users: Mapping[str, str],
    *,
    notify: str,
    watchers: set[tuple[str, str]],
    dm_team: str,
    now: datetime,
) -> list[dict[str, object]]:
    """The outbox rows an owner is owed for this poll's transitions.

    `users`: job id -> the owner's validated Slack user id. `alerts`: the alert rows this poll
    writes; each failure or time-out alert that is to be posted (pending, or held for quiet hours)
    gets one note, after it, in the same channel, that mentions the owner in the job's thread
    (delivery never posts it at the channel's top level). With `notify = "dm"` a job that ends
    also sends the owner the watcher's DM, unless they watch it (`watchers`: (job id, user)).
    """
    if notify == "off":
        return []
    by_id = {t.job.id: t for t in transitions}
    rows: list[dict[str, object]] = []
    for alert in alerts:
        t = by_id.get(str(alert["job_id"]))
        user = users.get(str(alert["job_id"]))
        if (
            t is None
            or user is None
            or t.job.status not in owners.MENTION_ON
            or alert["state"] not in ("pending", "held")
        ):
            continue
        rows.append(
            {
                **alert,
                "alert_id": f"owner:{t.alert_id}",
                "kind": "note",
                "old_status": None,
                "payload": TextPayload(
                    mention_text(user, t.job), thread_only=True, after=str(alert["alert_id"])
                ).dump(),
                "state": "pending",
            }
        )
    if notify == "dm":
        for t in transitions:
            user = users.get(t.job.id)
            if user is not None and t.job.status.terminal and (t.job.id, user) not in watchers:
                rows.append(dm_row(alert_id=f"dm-owner:{t.alert_id}", team_id=dm_team, user_id=user, t=t, now=now))
    return rows


def log_tail_rows(
    alerts: Iterable[Mapping[str, object]], transitions: Sequence[Transition], now: datetime
) -> list[dict[str, object]]:
    """One log-tail request (bot/pipeline/logtail.py) per failure or time-out that some channel is to be told
    about (an alert row pending, or held for quiet hours); none when no channel wants the alert."""
    told = {str(a["alert_id"]) for a in alerts if a.get("kind") == "alert" and a["state"] in ("pending", "held")}
    return [
        {
            "alert_id": t.alert_id,
            "queue": t.job.queue,
            "job_id": t.job.id,
            "job": t.job.model_dump_json(),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for t in transitions
        if t.job.status in LOG_TAIL_ON and t.alert_id in told
    ]


def _started(t: Transition) -> bool:
    return t.old is JobStatus.QUEUED and t.job.status is JobStatus.RUNNING


def commit_poll(
    db: Database,
    *,
    queue: str,
    started_at: datetime,
    result: DiffResult,
    now: datetime,
    fence: Fence | None,
    ops_channel: str | None = None,
    ops_team: str = "",
    timezone: str = "UTC",
    owner_users: Mapping[str, str] | None = None,
    owner_notify: str = "dm",
    log_tail: bool = False,
    normal: Normal | None = None,
    live: Sequence[Job] = (),
    baseline: bool = False,
) -> int:
    """Write snapshots (and the strings that name each job), cursor, health and outbox rows in one
    transaction; returns rows enqueued. `timezone` is that of quiet hours that name none (bot/core/quiet.py).
    `owner_users`: job id -> its owner's Slack user id, for `owner_rows` (bot/core/owners.py) and the
    subscriptions' `--owner` filter. `log_tail`: the queue wants failures' log tails; their requests
    are written here, read later (bot/pipeline/logtail.py).
    With `normal` (the queue's history, kept by the worker), finished jobs go into run_history, alerts
    carry what is usual, and slow or stuck jobs among `live` are flagged (bot/pipeline/usual.py).
    `baseline`: this is the queue's first poll (its history is recorded sparingly)."""
    with db.write() as session:
        if fence is not None:
            fence.check(session)
        for start in range(0, len(result.upserts), CHUNK):
            chunk = result.upserts[start : start + CHUNK]
            upsert(session, JobSnapshot, [snapshot_row(j, now) for j in chunk], keys=["queue", "job_id"])
            insert_ignore(session, JobRef, [row for j in chunk for row in ref_rows(j)])
        history = history_rows(result.transitions, now)
        for start in range(0, len(history), CHUNK):
            session.execute(insert(TransitionRecord), history[start : start + CHUNK])
        subs = subscriptions.for_queue(session, queue)
        transitions: list[Transition] = result.transitions
        flagged: list[Flag] = []
        if normal is not None:
            transitions, flagged = apply_normal(
                session,
                result=result,
                normal=normal,
                live=live,
                now=now,
                baseline=baseline,
                token=fence.token if fence is not None else None,
            )
        rows = alert_rows(subs, transitions, now, owner_users) + flag_rows(subs, flagged, now, owner_users)
        hold_muted(session, rows, queue=queue, now=now)
        hold_quiet(rows, subs, now=now, default_tz=timezone)
        watched = watch_rows(session, queue, result.transitions, now)
        if owner_users:
            watchers = {(str(r["job_id"]), str(r["channel_id"])) for r in watched}
            dm_team = subs[0].team_id if subs else ops_team
            rows.extend(
                owner_rows(
                    list(rows),
                    result.transitions,
                    owner_users,
                    notify=owner_notify,
                    watchers=watchers,
                    dm_team=dm_team,
                    now=now,
                )
            )
        rows.extend(watched)
        if log_tail:
            insert_ignore(session, LogTailRequest, log_tail_rows(rows, result.transitions, now))
        state = session.get(QueueState, queue) or QueueState(queue=queue)
        notes = [] if state.baseline_at is None else retry_rows(session, subs, result.upserts, rows, now)
        if notes:  # a baseline announces nothing, retries included
            hold_muted(session, notes, queue=queue, now=now)
            rows.extend(n for n in notes if n["state"] != "muted")
        if state.outage_notified and ops_channel:
            rows.append(
                OutboxRow.notice(
                    recovered_id(queue, started_at),
                    f"Queue {queue} is polling again after {state.consecutive_failures} failed polls.",
                    team_id=ops_team,
                    channel_id=ops_channel,
                    queue=queue,
                    now=now,
                ).values()
            )
        if state.baseline_at is None:
            state.baseline_at = now
        state.watermark = started_at
        state.last_poll_at = now
        state.last_success_at = now
        state.last_error = None
        state.consecutive_failures = 0
        state.outage_notified = False
        session.add(state)
        return sum(insert_ignore(session, OutboxItem, rows[i : i + CHUNK]) for i in range(0, len(rows), CHUNK))


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
    threshold: int,
    ops_channel: str | None,
    ops_team: str = "",
    remedy: str | None = None,
) -> bool:
    """Count a failed poll; returns True when this failure crosses the threshold (notice sent once).

    A failure with a `remedy` (one that waiting will not cure, such as refused credentials) crosses
    it at once, and its notice says what to check.
    """
    with db.write() as session:
        if fence is not None:
            fence.check(session)
        state = session.get(QueueState, queue) or QueueState(queue=queue)
        state.consecutive_failures += 1
        state.last_poll_at = now
        state.last_error = error
        due = remedy is not None or state.consecutive_failures >= threshold
        crossed = due and not state.outage_notified
        if crossed:
            state.outage_notified = True
            if ops_channel:
                text = outage_text(queue, state.consecutive_failures, error, remedy)
                insert_ignore(
                    session,
                    OutboxItem,
                    [
                        OutboxRow.notice(
                            outage_id(queue, now), text, team_id=ops_team, channel_id=ops_channel, queue=queue, now=now
                        ).values()
                    ],
                )
        session.add(state)
        return crossed
