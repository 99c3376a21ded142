"""Claims of failed jobs in the store (table job_claim): who is on a job, per workspace, and the
failures of the last day nobody has claimed (`/jobs open`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.outbox import TOLD, OutboxKind
from bot.store.db import chunks
from bot.store.tables import JobClaim, JobSnapshot, OutboxItem, RunHistory
from providers import Job, JobStatus

FAILURES = (JobStatus.FAILED.value, JobStatus.TIMED_OUT.value)
SCAN = 2_000  # newest failures read per queue for `/jobs open`


@dataclass(frozen=True)
class Claimed:
    """Who has a job, since when, and whom they took it over from (None: the first claim)."""

    user_id: str
    at: datetime
    previous: str | None = None


def _row(session: Session, team_id: str, queue: str, job_id: str) -> JobClaim | None:
    return session.exec(
        select(JobClaim).where(JobClaim.team_id == team_id, JobClaim.queue == queue, JobClaim.job_id == job_id)
    ).first()


def of_job(session: Session, team_id: str, queue: str, job_id: str) -> Claimed | None:
    """The job's current claim in the workspace, or None."""
    row = _row(session, team_id, queue, job_id)
    return None if row is None else Claimed(row.user_id, row.claimed_at, row.previous_user_id)


def claim(session: Session, *, team_id: str, queue: str, job_id: str, user_id: str, now: datetime) -> None:
    """Record `user_id` as the job's claimer: a new row, or the current one taken over (its user kept
    as `previous_user_id`). Two first claims committed at once: the second raises Conflict."""
    row = _row(session, team_id, queue, job_id)
    if row is None:
        row = JobClaim(team_id=team_id, queue=queue, job_id=job_id, user_id=user_id, claimed_at=now)
    else:
        row.previous_user_id, row.user_id, row.claimed_at = row.user_id, user_id, now
    session.add(row)


def of_jobs(session: Session, queue: str, job_ids: Sequence[str]) -> dict[tuple[str, str], Claimed]:
    """(team, job id) -> the current claim, for those of `job_ids` claimed in any workspace."""
    found: dict[tuple[str, str], Claimed] = {}
    for chunk in chunks(sorted(set(job_ids))):
        for row in session.exec(select(JobClaim).where(JobClaim.queue == queue, col(JobClaim.job_id).in_(chunk))).all():
            found[(row.team_id, row.job_id)] = Claimed(row.user_id, row.claimed_at, row.previous_user_id)
    return found


def claimed_ids(session: Session, team_id: str, queue: str, job_ids: Sequence[str]) -> set[str]:
    """Those of `job_ids` someone in the workspace has claimed."""
    found: set[str] = set()
    for chunk in chunks(job_ids):
        found.update(
            session.exec(
                select(JobClaim.job_id).where(
                    JobClaim.team_id == team_id, JobClaim.queue == queue, col(JobClaim.job_id).in_(chunk)
                )
            ).all()
        )
    return found


def failures(session: Session, queue: str) -> list[Job]:
    """The queue's newest stored failed and timed-out jobs (at most SCAN)."""
    rows = session.exec(
        select(JobSnapshot.data)
        .where(JobSnapshot.queue == queue, col(JobSnapshot.status).in_(FAILURES))
        .order_by(col(JobSnapshot.created_at).desc().nulls_last())
        .limit(SCAN)
    ).all()
    return [Job.stored(data) for data in rows]


def last_successes(session: Session, queue: str, families: Iterable[str]) -> dict[str, datetime]:
    """Family -> when its newest succeeded run ended (run_history), for the families that have one."""
    found: dict[str, datetime] = {}
    for chunk in chunks(sorted(set(families))):
        for family, ended in session.exec(
            select(RunHistory.family, RunHistory.ended_at).where(
                RunHistory.queue == queue,
                col(RunHistory.family).in_(chunk),
                RunHistory.status == JobStatus.SUCCEEDED.value,
            )
        ).all():
            if ended is not None and (family not in found or ended > found[family]):
                found[family] = ended
    return found


def card(session: Session, team_id: str, channel_id: str, queue: str, job_id: str) -> Job | None:
    """The job as its card in the channel last showed it: the payload of its newest status alert there
    (with what is usual, its streak and cause), or None."""
    payload = session.exec(
        select(OutboxItem.payload)
        .where(
            OutboxItem.team_id == team_id,
            OutboxItem.channel_id == channel_id,
            OutboxItem.queue == queue,
            OutboxItem.job_id == job_id,
            OutboxItem.kind == OutboxKind.ALERT.value,
        )
        .order_by(col(OutboxItem.id).desc())
    ).first()
    return Job.stored(payload) if payload else None


def told_failures(
    session: Session, team_id: str, channel_id: str, queue: str, *, since: datetime, before: datetime
) -> list[tuple[str, Job, datetime]]:
    """The failure and time-out alerts of `queue` written for the channel between `since` and
    `before` that went, or will go, to it (TOLD): (alert id, the job as told, when it was written)."""
    rows = session.exec(
        select(OutboxItem.alert_id, OutboxItem.payload, OutboxItem.created_at).where(
            OutboxItem.team_id == team_id,
            OutboxItem.channel_id == channel_id,
            OutboxItem.queue == queue,
            OutboxItem.kind == OutboxKind.ALERT.value,
            col(OutboxItem.new_status).in_(FAILURES),
            col(OutboxItem.state).in_([s.value for s in TOLD]),
            col(OutboxItem.created_at) >= since,
            col(OutboxItem.created_at) <= before,
        )
    ).all()
    return [(alert_id, Job.stored(payload), at) for alert_id, payload, at in rows]


def written(session: Session, team_id: str, channel_id: str, alert_ids: Sequence[str]) -> set[str]:
    """Those of `alert_ids` the channel's outbox already has a row for (in any state)."""
    found: set[str] = set()
    for chunk in chunks(alert_ids):
        found.update(
            session.exec(
                select(OutboxItem.alert_id).where(
                    OutboxItem.team_id == team_id,
                    OutboxItem.channel_id == channel_id,
                    col(OutboxItem.alert_id).in_(chunk),
                )
            ).all()
        )
    return found
