"""Retention against a real SQLite store: old finished jobs and settled alerts go, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.pipeline.prune import prune
from bot.store.db import Database
from bot.store.lease import LeaseKeeper
from bot.store.tables import AuditEntry, JobRef, JobSnapshot, JobThread, OutboxItem, StopRequest, TransitionRecord

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=2)


def snapshot(job_id: str, *, live: bool, seen: datetime) -> JobSnapshot:
    return JobSnapshot(
        queue="q", job_id=job_id, name=job_id, status="running" if live else "succeeded", live=live,
        fingerprint="f", seen_at=seen, data="{}",
    )  # fmt: skip


def outbox(n: int, state: str, created: datetime) -> OutboxItem:
    return OutboxItem(
        alert_id=f"a{n}", team_id="T", channel_id="C", queue="q", payload="{}", state=state,
        next_attempt_at=created, created_at=created,
    )  # fmt: skip


def test_prune_forgets_only_old_settled_history(db: Database) -> None:
    with db.write() as session:
        session.add(snapshot("old-done", live=False, seen=OLD))
        session.add(snapshot("old-live", live=True, seen=OLD))  # a job running for 40 days stays
        session.add(snapshot("new-done", live=False, seen=RECENT))
        session.add(JobRef(queue="q", job_id="old-done", ref="old-done", rank=0))
        session.add(JobRef(queue="q", job_id="new-done", ref="new-done", rank=0))
        for job in ("old-done", "new-done"):
            stop = StopRequest(queue="q", job_id=job, team_id="T", channel_id="C", user_id="U", requested_at=OLD)
            session.add(stop)
        session.add(
            JobThread(team_id="T", channel_id="C", queue="q", job_id="old-done", parent_ts="1", parent_alert_id="x")
        )
        session.add(
            JobThread(team_id="T", channel_id="C", queue="q", job_id="new-done", parent_ts="2", parent_alert_id="y")
        )
        for n, (state, created) in enumerate(
            [("sent", OLD), ("dead", OLD), ("digested", OLD), ("pending", OLD), ("sending", OLD), ("sent", RECENT)]
        ):
            session.add(outbox(n, state, created))
        session.add(AuditEntry(team_id="T", user_id="U", channel_id="C", action="subscribe", at=OLD))
    fence = LeaseKeeper(db, clock=lambda: NOW).renew()
    done = prune(db, now=NOW, retention=timedelta(days=30), fence=fence)
    assert (done.snapshots, done.outbox) == (1, 3)
    with db.read() as session:
        assert sorted(s.job_id for s in session.exec(select(JobSnapshot))) == ["new-done", "old-live"]
        assert [t.job_id for t in session.exec(select(JobThread))] == ["new-done"]
        assert [r.job_id for r in session.exec(select(JobRef))] == ["new-done"]  # a pruned job is not named
        assert [r.job_id for r in session.exec(select(StopRequest))] == ["new-done"]
        assert sorted(o.state for o in session.exec(select(OutboxItem))) == ["pending", "sending", "sent"]
        assert len(session.exec(select(AuditEntry)).all()) == 1  # the audit trail is kept
    assert prune(db, now=NOW, retention=timedelta(days=30), fence=fence) == type(done)()  # nothing left to do


def test_prune_works_in_batches(db: Database) -> None:
    with db.write() as session:
        for n in range(2_500):
            session.add(snapshot(f"j{n}", live=False, seen=OLD))
    done = prune(db, now=NOW, retention=timedelta(days=30), fence=None)
    assert done.snapshots == 2_500


def test_a_large_baseline_is_written_in_bounded_statements(db: Database) -> None:
    """10k jobs x 9 columns: far past SQLite's 32,766 bound parameters for one INSERT."""
    from bot.store.db import upsert

    rows = [
        {
            "queue": "q",
            "job_id": f"j{n}",
            "name": f"j{n}",
            "status": "succeeded",
            "live": False,
            "fingerprint": "f",
            "created_at": None,
            "seen_at": NOW,
            "data": "{}",
        }
        for n in range(10_000)
    ]
    with db.write() as session:
        upsert(session, JobSnapshot, rows, keys=["queue", "job_id"])
    with db.read() as session:
        assert len(session.exec(select(JobSnapshot.job_id)).all()) == 10_000


def test_transition_history_is_kept_a_week_or_the_retention_if_shorter(db: Database) -> None:
    with db.write() as session:
        for n, age in enumerate((timedelta(hours=23), timedelta(days=3), timedelta(days=8))):
            session.add(TransitionRecord(queue="q", job_id=f"j{n}", name="j", new="failed", at=NOW - age))
    fence = LeaseKeeper(db, clock=lambda: NOW).renew()
    assert prune(db, now=NOW, retention=timedelta(days=30), fence=fence).transitions == 1
    assert prune(db, now=NOW, retention=timedelta(days=1), fence=fence).transitions == 1
    assert prune(db, now=NOW, retention=timedelta(hours=1), fence=fence).transitions == 0
    with db.read() as session:
        assert [t.job_id for t in session.exec(select(TransitionRecord))] == ["j0"]  # the dry-run's 24 h stay
