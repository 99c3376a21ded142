"""Which job a user means: the one rule every command that names a job follows.

A job answers to its id, to the provider's own identifiers of it (`Job.refs`: the AiTEMS version,
the Batch jobId, the PAI run's training or DLC job id; the SageMaker ARN and Modzy jobIdentifier
are ids, the SageMaker training job name is the name) and to its name, all case-insensitively.
These strings are kept lowercased in `job_ref` (bot/tables.py), one indexed lookup per command.

When several jobs match: an id beats a provider id, which beats a name; among equals, the id
typed with its exact case, then the newest by created_at (unknown last), then the smallest id.
`Resolved.others` says how many other jobs matched at all, so a reply can say so.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select

from bot.access import ServiceError
from bot.tables import JobRef, JobSnapshot
from providers import Job

ID, PROVIDER_ID, NAME = 0, 1, 2  # JobRef.rank: which kind of match, best first
MATCHED = {ID: "id", PROVIDER_ID: "provider id", NAME: "name"}


class NoSuchJob(ServiceError):
    """No job of the queue answers to the reference."""

    def __init__(self, queue: str, ref: str) -> None:
        super().__init__(f"no job `{ref[:100]}` in queue `{queue}` (try `/jobs list {queue}`)")
        self.queue = queue
        self.ref = ref


@dataclass(frozen=True)
class Resolved:
    """The job a reference names (as last stored), how it matched, and how many other jobs it matched."""

    job: Job
    others: int
    matched: str  # id | provider id | name


def ref_rows(job: Job) -> list[dict[str, Any]]:
    """The job_ref rows of `job`: each lowercased string it answers to, with its best rank."""
    ranks: dict[str, int] = {}
    for rank, values in ((ID, (job.id,)), (PROVIDER_ID, job.refs), (NAME, (job.name,))):
        for value in values:
            key = value.lower()
            if key and key not in ranks:
                ranks[key] = rank
    return [{"queue": job.queue, "job_id": job.id, "ref": key, "rank": rank} for key, rank in ranks.items()]


def resolve_job(session: Session, queue: str, ref: str, *, among: Collection[str] | None = None) -> Resolved:
    """The job of `queue` that `ref` names (see the module docstring), or NoSuchJob.

    `among` limits the candidates to these job ids (e.g. the jobs a channel has muted).
    """
    where = [col(JobRef.queue) == queue, col(JobRef.ref) == ref.lower()]
    if among is not None:
        where.append(col(JobRef.job_id).in_(list(among)))
    joined = and_(col(JobSnapshot.queue) == JobRef.queue, col(JobSnapshot.job_id) == JobRef.job_id)
    best = session.exec(
        select(JobRef.rank, JobSnapshot.data)
        .join(JobSnapshot, joined)
        .where(*where)
        .order_by(
            col(JobRef.rank),
            case((col(JobSnapshot.job_id) == ref, 0), else_=1),
            col(JobSnapshot.created_at).desc().nulls_last(),
            col(JobSnapshot.job_id),
        )
        .limit(1)
    ).first()
    if best is None:
        raise NoSuchJob(queue, ref)
    count = session.exec(select(func.count()).select_from(JobRef).join(JobSnapshot, joined).where(*where)).one()
    rank, data = best
    return Resolved(Job.model_validate_json(data), int(count) - 1, MATCHED[rank])
