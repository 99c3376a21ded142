from datetime import UTC, datetime, timedelta

import pytest

from bot.core.snapshot import Prior, fingerprint
from bot.pipeline.diff import diff
from providers import Job, JobStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job(job_id: str, status: JobStatus, native: str = "x", updated: datetime = T0) -> Job:
    return Job(queue="q", id=job_id, name=job_id, status=status, native_status=native, updated_at=updated)


def prior(j: Job) -> Prior:
    return Prior(j.status, fingerprint(j))


Q, R, S, F, U = JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.UNKNOWN


@pytest.mark.parametrize(
    ("before", "after", "baseline", "expected"),
    [
        # baseline: stored, never announced
        (None, Q, True, []),
        # a job first seen after the baseline is announced with its current status
        (None, R, False, [(None, R)]),
        # a canonical change is one transition
        (Q, R, False, [(Q, R)]),
        (R, S, False, [(R, S)]),
        (R, F, False, [(R, F)]),
        # same canonical status: silence
        (R, R, False, []),
        # a terminal job never moves back (eventual consistency)
        (S, R, False, []),
        # moving into unknown is stored but not announced; first seen as unknown likewise
        (R, U, False, []),
        (None, U, False, []),
        # leaving unknown is announced
        (U, S, False, [(U, S)]),
    ],
)
def test_transitions(before, after, baseline, expected):
    previous = {"a": prior(job("a", before))} if before else {}
    result = diff(previous, [job("a", after)], baseline=baseline)
    assert [(t.old, t.job.status) for t in result.transitions] == expected


def test_native_change_inside_a_canonical_status_is_stored_not_announced():
    old = job("a", R, "InProgress (Downloading)")
    new = job("a", R, "InProgress (Training)")
    result = diff({"a": prior(old)}, [new], baseline=False)
    assert result.transitions == []
    assert result.upserts == [new]


def test_unchanged_job_is_not_rewritten():
    j = job("a", R)
    assert diff({"a": prior(j)}, [j], baseline=False).upserts == []


def test_backward_move_is_not_stored_either():
    result = diff({"a": prior(job("a", S))}, [job("a", R)], baseline=False)
    assert result.upserts == [] and result.transitions == []


def test_alert_id_is_deterministic_and_distinct():
    a = diff({"a": prior(job("a", Q))}, [job("a", R)], baseline=False).transitions[0]
    b = diff({"a": prior(job("a", Q))}, [job("a", R)], baseline=False).transitions[0]
    c = diff({"a": prior(job("a", R))}, [job("a", S)], baseline=False).transitions[0]
    assert a.alert_id == b.alert_id
    assert a.alert_id != c.alert_id


def test_jobs_missing_from_a_listing_produce_nothing():
    previous = {"a": prior(job("a", R)), "b": prior(job("b", R))}
    result = diff(previous, [job("a", R)], baseline=False)
    assert result.transitions == [] and result.upserts == []


def test_old_history_the_store_forgot_is_not_news() -> None:
    cutoff = T0 + timedelta(days=30)
    old_done = job("old", S, updated=T0)  # pruned long ago, listed again
    fresh_done = job("fresh", S, updated=cutoff + timedelta(hours=1))
    old_running = job("slow", R, updated=T0)  # still live: always news
    result = diff({}, [old_done, fresh_done, old_running], baseline=False, forgotten_before=cutoff)
    assert [t.job.id for t in result.transitions] == ["fresh", "slow"]
    assert {j.id for j in result.upserts} == {"old", "fresh", "slow"}  # remembered again, quietly


@pytest.mark.parametrize(
    ("before", "after", "attempt", "quiet"),
    [
        (R, Q, 2, True),  # a failed attempt sends the job back to the queue: the thread note says it
        (Q, R, 2, True),  # the next attempt starts
        (R, Q, 1, False),  # no retry known: an ordinary change
        (R, JobStatus.STOPPING, 2, False),  # a stop of a retried job still alerts
        (R, F, 3, False),  # the final outcome is an ordinary alert
        (R, S, 2, False),
        (None, R, 2, False),  # first seen on a later attempt: announced
    ],
)
def test_changes_within_a_retry_are_quiet(
    before: JobStatus | None, after: JobStatus, attempt: int, quiet: bool
) -> None:
    old = None if before is None else job("a", before)
    new = Job(queue="q", id="a", name="a", status=after, native_status="x", updated_at=T0, extra={"attempt": attempt})
    (t,) = diff({} if old is None else {"a": prior(old)}, [new], baseline=False).transitions
    assert t.quiet is quiet
