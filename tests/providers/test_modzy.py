"""Modzy job history against the local tenant."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from modzy import ApiClient

from bot.sim.http import LocalServer, Request, Response
from bot.sim.modzy import ModzySim
from providers import AccessDeniedError, AuthError, ConflictError, Job, JobStatus, UnavailableError
from providers._http import Requester, make_client
from providers.modzy import MAX_DEFERRED, PAGE_SIZE, ModzyQueue, ModzySource, status_of


@pytest.fixture
def sim() -> Iterator[ModzySim]:
    s = ModzySim().start()
    yield s
    s.stop()


def source(sim: ModzySim, *, key: str | None = None) -> ModzySource:
    return ModzySource(ModzyQueue(name="inf", endpoint_url=sim.url, api_key_env="MK"), env={"MK": key or sim.api_key})


@pytest.mark.parametrize(
    ("raw", "expected", "reason"),
    [
        ({"status": "COMPLETED", "total": 10, "completed": 10, "failed": 0}, JobStatus.SUCCEEDED, None),
        (
            {"status": "COMPLETED", "total": 10, "completed": 7, "failed": 3},
            JobStatus.SUCCEEDED,
            "3 of 10 inputs failed",
        ),
        ({"status": "COMPLETED", "total": 4, "completed": 0, "failed": 4}, JobStatus.FAILED, "4 of 4 inputs failed"),
        ({"status": "in_progress"}, JobStatus.RUNNING, None),
        ({"status": "TIMEDOUT"}, JobStatus.TIMED_OUT, None),
        ({"status": "QUEUED_V2"}, JobStatus.UNKNOWN, None),
    ],
)
def test_status_of(raw: dict[str, object], expected: JobStatus, reason: str | None) -> None:
    assert status_of(raw) == (expected, reason)


def test_name_carries_the_identifier_and_model(sim: ModzySim) -> None:
    job = sim.add("ocr")
    (got,) = source(sim).list_jobs(since=None, live=[])
    assert got.id == job.ident and got.name == f"{job.ident} (ocr)"
    assert got.created_at is not None and got.created_at.tzinfo is UTC


def test_wrong_key_is_an_auth_error_without_the_key_in_it(sim: ModzySim) -> None:
    sim.add("ocr")
    with pytest.raises(AuthError) as info:
        source(sim, key="wrong-key-123").list_jobs(since=None, live=[])
    assert "wrong-key-123" not in str(info.value)


def test_missing_key_names_the_variable(sim: ModzySim) -> None:
    with pytest.raises(AuthError, match="MK"):
        ModzySource(ModzyQueue(name="inf", endpoint_url=sim.url, api_key_env="MK"), env={})


def test_steady_cycle_costs_one_request_at_10k_history(sim: ModzySim) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    for _ in range(9_700):
        sim.set(sim.add("ocr", when=old).ident, "COMPLETED")
        sim.jobs[next(reversed(sim.jobs))].updated = old
    live_ids = [sim.add("ocr", "IN_PROGRESS", when=old).ident for _ in range(300)]
    for ident in live_ids:
        sim.jobs[ident].updated = old
    src = source(sim)
    baseline = src.list_jobs(since=None, live=[])
    naive = sim.calls["history"]
    assert len(baseline) == 10_000 and naive == 101
    sim.calls.clear()
    since = datetime.now(UTC)
    sim.set(live_ids[0], "COMPLETED")
    live = [j for j in baseline if not j.status.terminal]
    changed = {j.id: j for j in src.list_jobs(since=since - timedelta(seconds=1), live=live)}
    assert changed[live_ids[0]].status is JobStatus.SUCCEEDED
    assert sim.calls["history"] == 1
    assert sim.calls["job"] <= 1  # at most one re-check of a quiet live job by id


def test_a_job_the_history_no_longer_shows_is_rechecked_by_id(sim: ModzySim) -> None:
    job = sim.add("ocr", "IN_PROGRESS")
    src = source(sim)
    (live,) = src.list_jobs(since=None, live=[])
    hidden = sim.jobs.pop(job.ident)
    hidden.status = "COMPLETED"
    later = datetime.now(UTC) + timedelta(hours=2)
    assert src.list_jobs(since=later, live=[live]) == []  # gone from history and from /jobs/{id}
    sim.jobs[job.ident] = hidden
    (got,) = src.list_jobs(since=later + timedelta(hours=2), live=[live])
    assert got.status is JobStatus.SUCCEEDED


def test_busy_cycles_defer_the_recheck_but_not_for_ever(sim: ModzySim) -> None:
    quiet = sim.add("ocr", "IN_PROGRESS", when=datetime.now(UTC) - timedelta(hours=3))
    src = source(sim)
    baseline = src.list_jobs(since=None, live=[])
    live = [j for j in baseline if j.id == quiet.ident]
    start = datetime.now(UTC)
    for n in range(MAX_DEFERRED + 1):  # every cycle: a full page of changes, so two history pages
        at = start + timedelta(minutes=10 * (n + 1))  # past the previous burst's overlap window
        for _ in range(PAGE_SIZE):
            sim.add(f"burst-{n}", when=at)
        since = at - timedelta(seconds=1)
        before = dict(sim.calls)
        src.list_jobs(since=since, live=live)
        rechecked = sim.calls["job"] - before.get("job", 0)
        assert sim.calls["history"] - before["history"] == 2
        assert rechecked == (1 if n == MAX_DEFERRED else 0)  # deferred ten times, then done anyway


def test_requester_honours_retry_after(sim: ModzySim) -> None:
    sim.add("ocr")
    sim.faults.extend(["throttle", "server"])
    waits: list[float] = []
    requester = Requester(
        make_client(sim.url, headers={"Authorization": f"ApiKey {sim.api_key}"}), what="m", sleep=waits.append
    )
    src = ModzySource(ModzyQueue(name="inf", endpoint_url=sim.url), env={"MODZY_API_KEY": "x"}, requester=requester)
    assert len(src.list_jobs(since=None, live=[])) == 1
    assert waits[0] == 0.0 and len(waits) == 2  # Retry-After: 0, then a backoff


def test_cancel_deletes_the_job_once_and_it_lists_stopped(sim: ModzySim) -> None:
    added = sim.add("sentiment-analysis", "IN_PROGRESS")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    result = src.stop_job(job, reason="U1: wrong model")
    assert result.accepted and result.native_status == "CANCELED"
    assert sim.stops == [added.ident] and sim.calls["cancel"] == 1
    (after,) = src.list_jobs(since=None, live=[])
    assert (after.status, after.native_status) == (JobStatus.STOPPED, "CANCELED")


def test_cancelling_a_completed_job_is_a_conflict_in_modzys_words(sim: ModzySim) -> None:
    sim.add("ocr", "COMPLETED")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    with pytest.raises(ConflictError, match="its status is COMPLETED"):
        src.stop_job(job, reason="U1: late")


def test_cancel_with_a_refused_key_is_an_auth_error(sim: ModzySim) -> None:
    sim.add("ocr", "SUBMITTED")
    (job,) = source(sim).list_jobs(since=None, live=[])
    with pytest.raises(AuthError) as refused:
        source(sim, key="wrong.key").stop_job(job, reason="U1: stop")
    assert not isinstance(refused.value, AccessDeniedError)
    assert "wrong.key" not in str(refused.value)


def test_a_cancel_without_an_answer_hits_its_deadline_once(sim: ModzySim) -> None:
    """The cancel waits `stop_timeout` seconds, is not retried, and says the cancel may have happened."""

    def late(req: Request) -> Response:
        time.sleep(1.0)
        return sim.handle(req)

    slow = LocalServer(late).start()
    try:
        added = sim.add("ocr", "IN_PROGRESS")
        src = ModzySource(ModzyQueue(name="inf", endpoint_url=slow.url, api_key_env="MK"), env={"MK": sim.api_key})
        src.stop_timeout = 0.2
        job = Job(queue="inf", id=added.ident, name="ocr", status=JobStatus.RUNNING, native_status="IN_PROGRESS")
        with pytest.raises(UnavailableError, match="may still have been applied"):
            src.stop_job(job, reason="U1: stop")
        time.sleep(1.2)  # a retry, had there been one, would have reached the fake by now
        assert sim.stops == [added.ident]
    finally:
        slow.stop()


def test_our_cancel_is_the_official_sdks(sim: ModzySim) -> None:
    """modzy-sdk's `jobs.cancel` as the oracle: the same method, path and Authorization header."""
    seen: list[Request] = []
    added = sim.add("ocr", "IN_PROGRESS")
    other = sim.add("ocr", "IN_PROGRESS")

    def record(req: Request) -> Response:
        seen.append(req)
        if req.path.startswith("/api/models"):  # the SDK client's set-up calls (base URL check, resources)
            return Response.json([])
        return sim.handle(req)

    server = LocalServer(record).start()
    try:
        ApiClient(base_url=f"{server.url}/api", api_key=sim.api_key).jobs.cancel(added.ident)
        src = ModzySource(ModzyQueue(name="inf", endpoint_url=server.url, api_key_env="MK"), env={"MK": sim.api_key})
        job = Job(queue="inf", id=other.ident, name="ocr", status=JobStatus.RUNNING, native_status="IN_PROGRESS")
        src.stop_job(job, reason="U1: stop")
    finally:
        server.stop()
    sdk, ours = [r for r in seen if not r.path.startswith("/api/models")]
    assert (sdk.method, sdk.path) == ("DELETE", f"/api/jobs/{added.ident}")
    assert (ours.method, ours.path) == ("DELETE", f"/api/jobs/{other.ident}")
    assert ours.headers["authorization"] == sdk.headers["authorization"] == f"ApiKey {sim.api_key}"
    assert sim.stops == [added.ident, other.ident]
    assert {sim.jobs[added.ident].status, sim.jobs[other.ident].status} == {"CANCELED"}
