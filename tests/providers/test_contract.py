"""The shared contract: every adapter, against its own fake, behaves the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from providers import (
    AccessDeniedError,
    AuthError,
    BadResponseError,
    ConflictError,
    Job,
    ProviderError,
    Stoppable,
    ThrottledError,
    stop_support,
)
from providers.model import JobStatus
from tests.providers.contract import BAD_DETAIL, FAULTS, STOP_REFUSALS, StopWorld, World
from tests.providers.worlds import WORLDS


@pytest.fixture(params=sorted(WORLDS))
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    w: World = WORLDS[request.param]()
    yield w
    w.close()


def test_pages_to_the_end(world: World) -> None:
    count = world.page_size * 2 + 3
    ids = {world.add(f"job-{n:04d}", next(iter(world.status_cases))) for n in range(count)}
    jobs = world.source().list_jobs(since=None, live=[])
    assert {j.id for j in jobs} == ids
    assert len(jobs) == count


def test_status_mapping(world: World) -> None:
    expected = {
        world.add(f"map-{n}", native): (native, status) for n, (native, status) in enumerate(world.status_cases.items())
    }
    jobs = {j.id: j for j in world.source().list_jobs(since=None, live=[])}
    for job_id, (native, status) in expected.items():
        assert jobs[job_id].status is status, native
        assert jobs[job_id].native_status.startswith(native)


def test_unknown_status_is_kept_as_unknown(world: World) -> None:
    job_id = world.add("odd", world.unknown_native)
    (job,) = [j for j in world.source().list_jobs(since=None, live=[]) if j.id == job_id]
    assert job.status is JobStatus.UNKNOWN
    assert job.native_status.startswith(world.unknown_native)


def test_times_are_aware_utc(world: World) -> None:
    world.add("t", next(iter(world.status_cases)))
    for job in world.source().list_jobs(since=None, live=[]):
        for value in (job.created_at, job.updated_at, job.started_at, job.ended_at):
            assert value is None or value.tzinfo is UTC
        assert job.created_at is not None
        assert abs(job.created_at - datetime.now(UTC)) < timedelta(hours=1)


def test_a_change_after_the_watermark_is_seen(world: World) -> None:
    source = world.source()
    live_native, terminal_native = _live_and_terminal(world)
    job_id = world.add("moving", live_native)
    (before,) = [j for j in source.list_jobs(since=None, live=[]) if j.id == job_id]
    watermark = datetime.now(UTC)
    world.set(job_id, terminal_native)
    changed = {j.id: j for j in source.list_jobs(since=watermark, live=[before])}
    assert changed[job_id].status is world.status_cases[terminal_native]


def test_get_job(world: World) -> None:
    job_id = world.add("detail", next(iter(world.status_cases)))
    source = world.source()
    job = source.get_job(job_id)
    assert job is not None and job.id == job_id


def test_a_malformed_detail_is_a_bad_response(world: World) -> None:
    job_id = world.add("garbled", next(iter(world.status_cases)))
    source = world.source()
    world.fault(BAD_DETAIL)
    with pytest.raises(BadResponseError, match=f"^{world.provider} contract: .*malformed"):
        source.get_job(job_id)
    detail = source.get_job(job_id)  # the fault was one answer: the next one parses
    assert detail is not None and detail.id == job_id


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_listing_raises_never_partial(world: World, fault: str) -> None:
    for n in range(world.page_size + 5):
        world.add(f"f-{n}", next(iter(world.status_cases)))
    world.fault(fault)
    with pytest.raises(AuthError if fault == "auth" else ProviderError):
        world.source().list_jobs(since=None, live=[])


def _live_and_terminal(world: World) -> tuple[str, str]:
    live = next(n for n, s in world.status_cases.items() if not s.terminal and s is not JobStatus.UNKNOWN)
    terminal = next(n for n, s in world.status_cases.items() if s is JobStatus.SUCCEEDED)
    return live, terminal


@pytest.fixture(params=sorted(name for name, cls in WORLDS.items() if hasattr(cls, "stop_native")))
def stop_world(request: pytest.FixtureRequest) -> Iterator[StopWorld]:
    """The worlds whose provider can stop jobs (the others must say so: test_stop_support_is_declared)."""
    w: StopWorld = WORLDS[request.param]()
    yield w
    w.close()


def _stopper(world: StopWorld) -> Stoppable:
    source = world.source()
    assert isinstance(source, Stoppable)
    return source


def _listed(world: World, job_id: str) -> Job:
    (job,) = [j for j in world.source().list_jobs(since=None, live=[]) if j.id == job_id]
    return job


def test_stop_support_is_declared(world: World) -> None:
    """An adapter either stops jobs or says plainly that its provider cannot."""
    support = stop_support(world.source())
    if hasattr(world, "stop_native"):
        assert support is None
    else:
        assert support == f"not supported by {world.provider}"


def test_stop_a_live_job_once_then_it_lists_stopping_then_stopped(stop_world: StopWorld) -> None:
    world, source = stop_world, _stopper(stop_world)
    job_id = world.add("to-stop", stop_world.stop_native)
    result = source.stop_job(_listed(world, job_id), reason="U123 (alice): wrong dataset")
    assert result.accepted and result.message
    assert stop_world.stops() == 1
    seen = [_listed(world, job_id).status for _ in range(3)]
    assert set(seen) <= {JobStatus.STOPPING, JobStatus.STOPPED}, seen
    assert seen[-1] is JobStatus.STOPPED
    assert stop_world.stops() == 1


def test_stopping_a_finished_job_is_a_conflict(stop_world: StopWorld) -> None:
    world, source = stop_world, _stopper(stop_world)
    _, finished = _live_and_terminal(world)
    job = _listed(world, world.add("done", finished))
    with pytest.raises(ConflictError) as refused:
        source.stop_job(job, reason="U123: late")
    assert "cannot be stopped" in str(refused.value)
    assert stop_world.stops() == 1
    assert _listed(world, job.id).status is JobStatus.SUCCEEDED


@pytest.mark.parametrize("kind", STOP_REFUSALS)
def test_a_refused_stop_is_told_in_plain_words_and_not_retried(stop_world: StopWorld, kind: str) -> None:
    world, source = stop_world, _stopper(stop_world)
    job = _listed(world, world.add("keep", stop_world.stop_native))
    stop_world.refuse_next_stop(kind)
    with pytest.raises(AccessDeniedError if kind == "denied" else ThrottledError) as refused:
        source.stop_job(job, reason="U123: try")
    text = str(refused.value)
    assert (stop_world.stop_permission if kind == "denied" else "throttling") in text
    assert stop_world.stops() == 1
    assert _listed(world, job.id).status is job.status
