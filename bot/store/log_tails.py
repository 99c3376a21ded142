"""Log-tail requests in the store: a failure whose log is to be read into its threads, written in
the poll's transaction and settled by the worker's log-tail job (bot/pipeline/logtail.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session

from bot.store.db import insert_ignore
from bot.store.tables import LogTailRequest
from providers import Job


def request(session: Session, failures: Iterable[tuple[str, Job]], now: datetime) -> int:
    """One pending request per (failure alert id, job as the alert showed it); a request already
    written for that alert id is kept. Returns how many are new."""
    rows: list[dict[str, object]] = [
        {
            "alert_id": alert_id,
            "queue": job.queue,
            "job_id": job.id,
            "job": job.model_dump_json(),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for alert_id, job in failures
    ]
    return insert_ignore(session, LogTailRequest, rows)
