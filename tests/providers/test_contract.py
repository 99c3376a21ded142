"""The shared contract: every adapter, against its own fake, behaves the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from providers import AuthError, BadResponseError, ProviderError
from providers.model import JobStatus
from tests.providers.contract import BAD_DETAIL, FAULTS, World
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
