"""Workflow Builder step runs in the store: the `step_wait` row of a "Wait for job to finish" run
(bot/features/workflow.py writes it, bot/pipeline/steps.py settles it) and the `step` outbox row that
completes a run (bot/core/outbox.py OutboxKind.STEP)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.alert_ids import step_id
from bot.core.outbox import OutboxRow, StepPayload
from bot.store.db import insert_ignore
from bot.store.outbox import insert
from bot.store.tables import JobSnapshot, StepWait
from providers import TERMINAL, Job

WAITING = "waiting"
DONE = "done"


@dataclass(frozen=True)
class Waiting:
    """One run waiting for its job: the job as last polled (None: no longer stored)."""

    id: int
    team_id: str
    execution_id: str
    queue: str
    job_id: str
    created_at: datetime
    job: Job | None


def wait(session: Session, *, team_id: str, execution_id: str, queue: str, job_id: str, now: datetime) -> bool:
    """Record a run that waits for `job_id`; False when this run is already recorded (Slack sent
    its event again)."""
    row = {
        "team_id": team_id,
        "execution_id": execution_id,
        "queue": queue,
        "job_id": job_id,
        "state": WAITING,
        "created_at": now,
    }
    return insert_ignore(session, StepWait, [row]) == 1


def complete(
    session: Session, *, team_id: str, execution_id: str, queue: str, job_id: str, body: StepPayload, now: datetime
) -> bool:
    """Owe the completion of the run `execution_id` (one `step` outbox row, whoever writes it first)
    and end its wait, if it has one; False when it was owed already."""
    row = OutboxRow.step(
        step_id(execution_id), body, team_id=team_id, execution_id=execution_id, queue=queue, job_id=job_id, now=now
    )
    new = insert(session, [row]) == 1
    found = session.exec(select(StepWait).where(StepWait.execution_id == execution_id)).first()
    if found is not None and found.state != DONE:
        found.state = DONE
        found.done_at = now
        session.add(found)
    return new


def due(session: Session, *, created_before: datetime, limit: int = 500) -> list[Waiting]:
    """The waiting runs whose job is terminal in the store, or that have waited since before
    `created_before` (whatever their job), oldest first."""
    terminal = [s.value for s in TERMINAL]
    query = (
        select(StepWait, JobSnapshot)
        .join(
            JobSnapshot,
            (col(JobSnapshot.queue) == col(StepWait.queue)) & (col(JobSnapshot.job_id) == col(StepWait.job_id)),
            isouter=True,
        )
        .where(StepWait.state == WAITING)
        .where(
            col(JobSnapshot.status).in_(terminal)
            | (col(StepWait.created_at) < created_before)
            | col(JobSnapshot.job_id).is_(None)
        )
        .order_by(col(StepWait.id))
        .limit(limit)
    )
    return [
        Waiting(
            id=wait.id or 0,
            team_id=wait.team_id,
            execution_id=wait.execution_id,
            queue=wait.queue,
            job_id=wait.job_id,
            created_at=wait.created_at,
            job=Job.stored(snap.data) if snap is not None else None,
        )
        for wait, snap in session.exec(query).all()
    ]
