import json
import sqlite3
from datetime import UTC, datetime

from sqlmodel import func, select

from bot.pipeline.diff import DiffResult
from bot.pipeline.enqueue import PollCommit, commit_poll
from bot.store.db import Database
from bot.store.tables import JobSnapshot
from providers import Job, JobStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def bind_variable_limit(db: Database) -> int:
    """How many bound variables one statement may carry: PostgreSQL's wire protocol counts them in
    16 bits; SQLite's limit is a build option (250,000 in Debian's, 32,766 upstream) read from the
    connection."""
    if db.postgresql:
        return 65_535
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


def test_a_baseline_bigger_than_the_stores_variable_limit_is_stored(db: Database) -> None:
    # One more snapshot row than fits the store's bound variables (9 columns a row) in one statement:
    # 27,778 rows on Debian's SQLite, 7,282 on PostgreSQL.
    n = bind_variable_limit(db) // len(JobSnapshot.__table__.columns) + 1  # type: ignore[attr-defined]
    jobs = [
        Job(queue="q", id=f"j{i}", name=f"j{i}", status=JobStatus.SUCCEEDED, native_status="done") for i in range(n)
    ]
    commit_poll(db, PollCommit(queue="q", started_at=T0, result=DiffResult(jobs, []), now=T0), fence=None)
    with db.read() as session:
        assert session.exec(select(func.count()).select_from(JobSnapshot)).one() == n


def test_a_provider_string_with_a_lone_surrogate_does_not_block_its_queue(db: Database) -> None:
    # JSON can carry "\\ud800" and the adapters' json.loads accepts it; UTF-8 cannot. One such name
    # used to fail every commit of the queue.
    job = Job.model_validate(
        json.loads(
            '{"queue": "q", "id": "j\\ud800", "name": "bad \\udc00 name", "status": "failed", '
            '"native_status": "Failed", "reason": "x\\ud800", "extra": {"k": "\\ud800"}}'
        )
    )
    assert (job.id, job.name, job.reason, job.extra["k"]) == ("j?", "bad ? name", "x?", "?")
    commit_poll(db, PollCommit(queue="q", started_at=T0, result=DiffResult([job], []), now=T0), fence=None)
    with db.read() as session:
        (row,) = session.exec(select(JobSnapshot)).all()
    assert row.name == "bad ? name"
