"""Watches in the store (bot/features/watching.py holds the use cases)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from bot.store.tables import Watch

CHUNK = 500  # ids per statement


def of_jobs(session: Session, queue: str, job_ids: Sequence[str]) -> list[Watch]:
    """Every watch of the given jobs of `queue`."""
    found: list[Watch] = []
    for start in range(0, len(job_ids), CHUNK):
        chunk = job_ids[start : start + CHUNK]
        found.extend(session.exec(select(Watch).where(Watch.queue == queue, col(Watch.job_id).in_(chunk))).all())
    return found


def end(session: Session, watch: Watch) -> None:
    """Delete a watch (its job ended; the watcher's last DM is written in the same transaction)."""
    session.delete(watch)
