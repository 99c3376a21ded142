"""Run history in the store: one row per finished job of a family, kept to the newest KEEP, and the
reads behind what is usual (bot/core/history.py holds the arithmetic)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from bot.core.history import KEEP, STATS_DAYS, WAITS, Summary, Usual, summarize, usual, wait_seconds
from bot.store.db import chunks, upsert
from bot.store.tables import RunHistory
from providers import Job, JobStatus


def history_row(job: Job, family: str) -> dict[str, object] | None:
    """A run_history row for a finished job (None for one not finished)."""
    if not job.status.terminal:
        return None
    run = job.duration_seconds if job.status is JobStatus.SUCCEEDED and job.ended_at else None
    cause = job.extra.get("cause")
    return {
        "queue": job.queue,
        "job_id": job.id,
        "family": family,
        "status": job.status.value,
        "cause": cause if isinstance(cause, str) else "",
        "run_seconds": run,
        "wait_seconds": wait_seconds(job),
        "ended_at": job.ended_at or job.updated_at or job.created_at,
    }


def record(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Write finished jobs' rows and keep only the newest KEEP of each family they touch."""
    if not rows:
        return
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((str(row["queue"]), str(row["family"])), []).append(row)
    newest: list[dict[str, object]] = []
    for group in groups.values():  # a baseline lists thousands: write only what would be kept
        group.sort(key=lambda r: (str(r["ended_at"] or ""), str(r["job_id"])), reverse=True)
        newest.extend(group[:KEEP])
    for part in chunks(newest):
        upsert(session, RunHistory, list(part), keys=["queue", "job_id"])
    crowded: list[tuple[str, str]] = []
    for queue in {q for q, _ in groups}:
        touched = sorted(f for q, f in groups if q == queue)
        for names in chunks(touched):  # one query finds the families past KEEP
            crowded.extend(
                (queue, family)
                for family in session.exec(
                    select(RunHistory.family)
                    .where(RunHistory.queue == queue, col(RunHistory.family).in_(names))
                    .group_by(col(RunHistory.family))
                    .having(func.count() > KEEP)
                ).all()
            )
    for queue, family in crowded:
        stale = session.exec(
            select(RunHistory.job_id)
            .where(RunHistory.queue == queue, RunHistory.family == family)
            .order_by(col(RunHistory.ended_at).desc(), col(RunHistory.job_id).desc())
            .offset(KEEP)
        ).all()
        for ids in chunks(stale):
            session.execute(delete(RunHistory).where(col(RunHistory.queue) == queue, col(RunHistory.job_id).in_(ids)))


def baseline_rows(jobs: Iterable[tuple[Job, str]]) -> list[dict[str, object]]:
    """At a queue's baseline, the rows worth keeping from (job, family) pairs: the newest KEEP
    finished jobs of each family with at least two finished jobs in the listing.

    A baseline lists the queue's whole history, which may be 100,000 jobs of which most have a name
    of their own (a family of one): writing a row for each would cost seconds and ~100k rows that
    can never reach MIN_RUNS on their own. A family seen once at the baseline starts its history
    with its next finished run instead; every family that recurs keeps what the listing tells. Rows
    are built only for what is kept, so the baseline's memory does not grow with its history.
    """
    by: dict[str, list[Job]] = {}
    for job, family in jobs:
        if job.status.terminal:
            by.setdefault(family, []).append(job)
    rows: list[dict[str, object]] = []
    for family, found in by.items():
        if len(found) < 2:
            continue
        found.sort(key=lambda j: (j.ended_at or j.updated_at or j.created_at or datetime.min.replace(tzinfo=UTC), j.id))
        rows.extend(r for j in found[-KEEP:] if (r := history_row(j, family)) is not None)
    return rows


def outcomes(session: Session, queue: str) -> list[tuple[str, str, str, datetime | None]]:
    """Every recorded run of the queue as (family, job id, status, ended_at), oldest first: what the
    failure streaks are counted from (bot/core/history.py `Streak`)."""
    stmt = select(RunHistory.family, RunHistory.job_id, RunHistory.status, RunHistory.ended_at).where(
        RunHistory.queue == queue
    )
    return list(session.exec(stmt.order_by(col(RunHistory.ended_at), col(RunHistory.job_id))).all())


def newest_waits(session: Session, queue: str) -> list[float]:
    """The queue's newest WAITS waits, newest first."""
    return [
        w
        for w in session.exec(
            select(RunHistory.wait_seconds)
            .where(RunHistory.queue == queue, col(RunHistory.wait_seconds).is_not(None))
            .order_by(col(RunHistory.ended_at).desc())
            .limit(WAITS)
        ).all()
        if w is not None
    ]


def family_runs(session: Session, queue: str, families: Iterable[str] | None) -> dict[str, list[float]]:
    """Run times of succeeded runs per family, oldest first (all families when `families` is None)."""
    stmt = select(RunHistory.family, RunHistory.run_seconds).where(
        RunHistory.queue == queue, col(RunHistory.run_seconds).is_not(None)
    )
    found: dict[str, list[float]] = {}
    wanted = None if families is None else sorted(set(families))
    for chunk in [None] if wanted is None else chunks(wanted):
        where = stmt if chunk is None else stmt.where(col(RunHistory.family).in_(chunk))
        for family, run in session.exec(where.order_by(col(RunHistory.ended_at), col(RunHistory.job_id))).all():
            if run is not None:
                found.setdefault(family, []).append(run)
    return found


def load(session: Session, queue: str, families: Iterable[str], *, since: datetime | None = None) -> dict[str, Usual]:
    """Usual run times per family, and the queue's waits in each (the queue-wide wait percentiles)."""
    wanted = sorted(set(families))
    runs: dict[str, list[float]] = {f: [] for f in wanted}
    for chunk in chunks(wanted):
        stmt = select(RunHistory.family, RunHistory.run_seconds).where(
            RunHistory.queue == queue,
            col(RunHistory.family).in_(chunk),
            col(RunHistory.run_seconds).is_not(None),
        )
        if since is not None:
            stmt = stmt.where(col(RunHistory.ended_at) >= since)
        for family, run in session.exec(stmt).all():
            if run is not None:
                runs[family].append(run)
    waits = newest_waits(session, queue)
    return {f: usual(runs[f], waits) for f in wanted}


def stats(session: Session, queue: str, family: str | None, now: datetime, *, top: int = 10) -> list[Summary]:
    """The queue as a whole, then its `top` busiest families (or just `family`), over STATS_DAYS."""
    stmt = select(RunHistory.family, RunHistory.status, RunHistory.run_seconds, RunHistory.wait_seconds).where(
        RunHistory.queue == queue, col(RunHistory.ended_at) >= now - timedelta(days=STATS_DAYS)
    )
    if family is not None:
        stmt = stmt.where(RunHistory.family == family)
    by: dict[str, list[tuple[str, float | None, float | None]]] = {}
    for fam, status, run, wait in session.exec(stmt).all():
        by.setdefault(fam, []).append((status, run, wait))
    if family is not None:
        return [summarize(family, by.get(family, []))]
    everything = [row for rows in by.values() for row in rows]
    busiest = sorted(by, key=lambda f: (-len(by[f]), f))[:top]
    return [summarize("*", everything), *(summarize(f, by[f]) for f in busiest)]
