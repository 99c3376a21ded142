"""The canonical Job: what a whole history of them costs, and that sharing never leaks between jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from providers import Job, JobStatus

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def job(ident: str, **kw: object) -> Job:
    return Job.model_validate(
        {"queue": "q", "id": ident, "name": ident, "status": JobStatus.RUNNING, "native_status": "Running", **kw}
    )


def test_jobs_given_the_same_fields_share_one_fields_set() -> None:
    a, b = job("a", created_at=NOW, extra={"k": 1}), job("b", created_at=NOW, extra={"k": 2})
    assert a.model_fields_set is b.model_fields_set
    assert a.model_fields_set == {"queue", "id", "name", "status", "native_status", "created_at", "extra"}
    assert job("c").model_fields_set == {"queue", "id", "name", "status", "native_status"}


def test_a_copy_with_updates_changes_no_other_job() -> None:
    a, b = job("a", created_at=NOW), job("b", created_at=NOW)
    ended = a.model_copy(update={"status": JobStatus.FAILED, "reason": "OOM"})
    assert ended.model_fields_set == a.model_fields_set | {"reason"}
    assert "reason" not in b.model_fields_set and "reason" not in a.model_fields_set
    assert (ended.reason, b.reason, b.status) == ("OOM", None, JobStatus.RUNNING)
