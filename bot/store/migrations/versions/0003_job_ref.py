"""job_ref: lowercased strings a job answers to (provider ids; ids and names with capitals).

An id or a name that is lowercase already is found through the snapshot's own indexes and gets
no row. Filled here from the stored snapshots. Snapshots written before `Job.refs` existed carry
no refs, so this revision derives them from what the adapters stored then: the AiTEMS version (id
`type/version`), the PAI run's linked job id (extra `source_id`) and the Batch jobId (the last part
of a `service-job/` ARN). Rank: 0 id, 1 provider id, 2 name (a string keeps its lowest rank).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 04:18:34.038456
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2_000


def upgrade() -> None:
    conn = op.get_bind()
    columns: list[sa.Column[Any]] = [
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
    ]
    job_ref: sa.TableClause
    if sa.inspect(conn).has_table("job_ref"):  # adopted: bot/store/db.py created today's tables (empty)
        job_ref = sa.table("job_ref", *(sa.column(c.name) for c in columns))
    else:
        job_ref = op.create_table("job_ref", *columns, sa.PrimaryKeyConstraint("queue", "job_id", "ref"))
        with op.batch_alter_table("job_ref", schema=None) as batch_op:
            batch_op.create_index("ix_job_ref", ["queue", "ref"], unique=False)
    for rows in _snapshots(conn):
        refs = [ref for row in rows for ref in _refs(*row)]
        if refs:
            conn.execute(sa.insert(job_ref), refs)


def downgrade() -> None:
    with op.batch_alter_table("job_ref", schema=None) as batch_op:
        batch_op.drop_index("ix_job_ref")
    op.drop_table("job_ref")


def _snapshots(conn: sa.Connection) -> Iterator[Sequence[Any]]:
    """(queue, job_id, name, data) of every snapshot, BATCH at a time in key order."""
    snap = sa.table("jobsnapshot", sa.column("queue"), sa.column("job_id"), sa.column("name"), sa.column("data"))
    query = sa.select(snap.c.queue, snap.c.job_id, snap.c.name, snap.c.data).order_by(snap.c.queue, snap.c.job_id)
    after: tuple[str, str] | None = None
    while True:
        page = query if after is None else query.where(sa.tuple_(snap.c.queue, snap.c.job_id) > after)
        rows = conn.execute(page.limit(BATCH)).all()
        if not rows:
            return
        yield rows
        after = (rows[-1][0], rows[-1][1])


def _refs(queue: str, job_id: str, name: str, data: str) -> list[dict[str, Any]]:
    try:
        job = json.loads(data)
    except ValueError:
        job = {}
    extra = job.get("extra") or {}
    natural = [str(r) for r in job.get("refs") or ()]
    if extra.get("type") and extra.get("version") and job_id == f"{extra['type']}/{extra['version']}":
        natural.append(str(extra["version"]))  # AiTEMS
    if extra.get("source_id"):
        natural.append(str(extra["source_id"]))  # PAI
    if ":service-job/" in job_id:
        natural.append(job_id.rsplit("/", 1)[1])  # Batch
    ranks: dict[str, int] = {}
    for rank, values in ((0, [job_id]), (1, natural), (2, [name])):
        for value in values:
            key = value.lower()
            if key and key not in ranks:
                ranks[key] = rank
    stored = {job_id: 0, name: 2}  # found through the snapshot's own indexes
    return [
        {"queue": queue, "job_id": job_id, "ref": key, "rank": rank}
        for key, rank in ranks.items()
        if stored.get(key) != rank
    ]
