"""Which job a user means: the one rule every command that names a job follows.

A job answers to its id, to the provider's own identifiers of it (`Job.refs`: the AiTEMS version,
the Batch jobId, the PAI run's training or DLC job id; the SageMaker ARN and Modzy jobIdentifier
are ids, the SageMaker training job name is the name) and to its name, all case-insensitively.

Every lookup is indexed: the lowercased string is looked up as a job_id (the snapshot's primary
key), as a name (ix_snapshot_name) and in `job_ref` (ix_job_ref). `job_ref` holds only what the
first two cannot find: the provider identifiers, and the lowercased form of an id or name that
has capitals. Most ids and names are lowercase already (Modzy, SageMaker, Batch ARNs), so most
jobs cost no job_ref row at all.

When several jobs match: an id beats a provider id, which beats a name; among equals, the id
typed with its exact case, then the newest by created_at (unknown last), then the smallest id.
`Resolved.others` says how many other jobs matched at all, so a reply can say so.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, select, union_all
from sqlmodel import Session

from bot.core.errors import NoSuchJob
from bot.store.tables import JobRef, JobSnapshot
from providers import Job

ID, PROVIDER_ID, NAME = 0, 1, 2  # JobRef.rank: which kind of match, best first
MATCHED = {ID: "id", PROVIDER_ID: "provider id", NAME: "name"}


@dataclass(frozen=True)
class Resolved:
    """The job a reference names (as last stored), how it matched, and how many other jobs it matched."""

    job: Job
    others: int
    matched: str  # id | provider id | name


def ref_rows(job: Job) -> list[dict[str, Any]]:
    """The job_ref rows of `job`: each lowercased string it answers to, with its best rank, except
    the ones the snapshot's own indexes find (an id or a name that is lowercase already)."""
    ranks: dict[str, int] = {}
    for rank, values in ((ID, (job.id,)), (PROVIDER_ID, job.refs), (NAME, (job.name,))):
        for value in values:
            key = value.lower()
            if key and key not in ranks:
                ranks[key] = rank
    stored = {job.id: ID, job.name: NAME}
    return [
        {"queue": job.queue, "job_id": job.id, "ref": key, "rank": rank}
        for key, rank in ranks.items()
        if stored.get(key) != rank
    ]


def resolve_job(session: Session, queue: str, ref: str, *, among: Collection[str] | None = None) -> Resolved:
    """The job of `queue` that `ref` names (see the module docstring), or NoSuchJob.

    `among` limits the candidates to these job ids (e.g. the jobs a channel has muted).
    """
    key = ref.lower()
    snap = JobSnapshot.__table__  # type: ignore[attr-defined]
    refs = JobRef.__table__  # type: ignore[attr-defined]
    found = union_all(
        select(refs.c.job_id, refs.c.rank).where(refs.c.queue == queue, refs.c.ref == key),
        select(snap.c.job_id, literal(ID).label("rank")).where(snap.c.queue == queue, snap.c.job_id == key),
        select(snap.c.job_id, literal(NAME).label("rank")).where(snap.c.queue == queue, snap.c.name == key),
    ).subquery()
    matches = select(found.c.job_id, func.min(found.c.rank).label("rank")).group_by(found.c.job_id)
    if among is not None:
        matches = matches.where(found.c.job_id.in_(list(among)))
    match = matches.subquery()
    best = session.execute(
        select(match.c.rank, snap.c.data)
        .join(snap, and_(snap.c.queue == queue, snap.c.job_id == match.c.job_id))
        .order_by(
            match.c.rank,
            case((snap.c.job_id == ref, 0), else_=1),
            snap.c.created_at.desc().nulls_last(),
            snap.c.job_id,
        )
        .limit(1)
    ).first()
    if best is None:
        raise NoSuchJob(queue, ref)
    count = session.execute(select(func.count()).select_from(match)).scalar_one()
    rank, data = best
    return Resolved(Job.stored(data), int(count) - 1, MATCHED[rank])
