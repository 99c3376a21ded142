"""Log-tail requests in the store: written in the poll's transaction with the failure alert
(bot/pipeline/enqueue.py), then read and settled by the worker's log-tail job
(bot/pipeline/logtail.py): the due ones, and each one's retry or settlement, in the caller's
transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.log_tails import LogTailState
from bot.store.db import insert_ignore
from bot.store.tables import LogTailRequest
from providers import Job


def due(session: Session, now: datetime, limit: int) -> list[LogTailRequest]:
    """Up to `limit` pending requests due by `now`, oldest first, detached from the session (they
    are read outside it, then settled in transactions of their own)."""
    rows = session.exec(
        select(LogTailRequest)
        .where(LogTailRequest.state == LogTailState.PENDING, LogTailRequest.next_attempt_at <= now)
        .order_by(col(LogTailRequest.id))
        .limit(limit)
    ).all()
    for row in rows:
        session.expunge(row)
    return list(rows)


def pending(session: Session, request_id: int | None) -> LogTailRequest | None:
    """The request, if it is still pending (another round may have settled it)."""
    stored = session.get(LogTailRequest, request_id)
    return stored if stored is not None and stored.state == LogTailState.PENDING else None


def retry_later(session: Session, request: LogTailRequest, *, tries: int, error: str, at: datetime) -> None:
    """A failed read, to be tried again at `at`."""
    request.attempts = tries
    request.last_error = error
    request.next_attempt_at = at
    session.add(request)


def settle(session: Session, request: LogTailRequest, state: LogTailState, error: str | None) -> None:
    """Done (its notes are written in the same transaction) or failed, with one more attempt counted."""
    request.state, request.last_error = state.value, error
    request.attempts += 1
    session.add(request)


def request(session: Session, failures: Iterable[tuple[str, Job]], now: datetime) -> int:
    """One pending request per (failure alert id, job as the alert showed it), written in the poll's
    transaction with the alert; a request already written for that alert id is kept. Returns how
    many are new."""
    rows: list[dict[str, object]] = [
        {
            "alert_id": alert_id,
            "queue": job.queue,
            "job_id": job.id,
            "job": job.model_dump_json(),
            "state": LogTailState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for alert_id, job in failures
    ]
    return insert_ignore(session, LogTailRequest, rows)
