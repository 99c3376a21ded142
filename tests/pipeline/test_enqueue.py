from datetime import UTC, datetime

from sqlmodel import func, select

from bot.db import Database
from bot.pipeline.diff import DiffResult
from bot.pipeline.enqueue import commit_poll
from bot.tables import JobSnapshot
from providers import Job, JobStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_baseline_bigger_than_sqlites_variable_limit_is_stored(db: Database) -> None:
    # 30,000 snapshot rows x 9 columns is more bound variables than SQLite allows in one statement.
    jobs = [
        Job(queue="q", id=f"j{i}", name=f"j{i}", status=JobStatus.SUCCEEDED, native_status="done")
        for i in range(30_000)
    ]
    commit_poll(db, queue="q", started_at=T0, result=DiffResult(jobs, []), now=T0, fence=None)
    with db.read() as session:
        assert session.exec(select(func.count()).select_from(JobSnapshot)).one() == 30_000
