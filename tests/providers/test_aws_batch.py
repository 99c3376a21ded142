"""AWS Batch service jobs against the local REST-JSON endpoint (moto has no ListServiceJobs)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.sim.batch import BatchSim
from providers import AuthError, ConflictError, JobStatus
from providers.aws_batch import LIVE_STATUSES, REASON_MAX, BatchQueue, BatchSource, status_of
from tests.conftest import AWS_ENV


@pytest.fixture
def sim() -> Iterator[BatchSim]:
    s = BatchSim().start()
    yield s
    s.stop()


def source(sim: BatchSim) -> BatchSource:
    config = BatchQueue(
        name="gpu", region="us-east-1", job_queue="q", endpoint_url=sim.url, access_key_env="K", secret_key_env="S"
    )
    return BatchSource(config, env={"K": AWS_ENV["TEST_AWS_KEY"], "S": AWS_ENV["TEST_AWS_SECRET"]}, max_attempts=2)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"status": "RUNNABLE"}, JobStatus.QUEUED),
        ({"status": "SCHEDULED"}, JobStatus.QUEUED),
        ({"status": "STARTING"}, JobStatus.RUNNING),
        ({"status": "RUNNING", "isTerminated": True}, JobStatus.STOPPING),
        ({"status": "SUCCEEDED"}, JobStatus.SUCCEEDED),
        ({"status": "FAILED"}, JobStatus.FAILED),
        ({"status": "FAILED", "isTerminated": True}, JobStatus.STOPPED),
        ({"status": "FAILED", "statusReason": "Job exceeded max runtime"}, JobStatus.TIMED_OUT),
        ({"status": "HIBERNATING"}, JobStatus.UNKNOWN),
    ],
)
def test_status_of(raw: dict[str, object], expected: JobStatus) -> None:
    assert status_of(raw) is expected


def test_fields(sim: BatchSim) -> None:
    job = sim.add("llama", "RUNNING")
    sim.set(job.job_id, "FAILED", reason="AlgorithmError: NaN")
    (got,) = source(sim).list_jobs(since=None, live=[])
    assert got.id == job.arn and got.name == "llama" and got.native_status == "FAILED"
    assert got.reason == "AlgorithmError: NaN"
    assert got.ended_at is not None and got.ended_at.tzinfo is UTC
    assert got.url and got.url.endswith("#/jobs/llama")
    assert got.extra["capacity"] == "1× ml.g5.xlarge"


def test_a_job_that_leaves_running_is_followed_to_its_end(sim: BatchSim) -> None:
    """docs/providers.md §AWS Batch: it vanishes from every live listing; Describe says SUCCEEDED."""
    old = datetime.now(UTC) - timedelta(days=2)
    job = sim.add("long", "RUNNING", created_ms=int(old.timestamp() * 1000))
    src = source(sim)
    (running,) = src.list_jobs(since=None, live=[])
    sim.set(job.job_id, "SUCCEEDED")
    (done,) = src.list_jobs(since=datetime.now(UTC), live=[running])
    assert done.status is JobStatus.SUCCEEDED
    assert sim.calls["describeservicejob"] == 1


def test_a_job_born_and_finished_between_polls_is_seen(sim: BatchSim) -> None:
    src = source(sim)
    since = datetime.now(UTC)
    sim.set(sim.add("quick").job_id, "FAILED", reason="bad image")
    (job,) = src.list_jobs(since=since, live=[])
    assert job.status is JobStatus.FAILED


def test_steady_state_cost_follows_live_jobs_not_history(sim: BatchSim) -> None:
    long_ago = int((datetime.now(UTC) - timedelta(days=30)).timestamp() * 1000)
    for n in range(9_700):
        sim.add(f"old-{n}", "SUCCEEDED", created_ms=long_ago)
    for n in range(300):
        sim.add(f"live-{n}", "RUNNING", created_ms=long_ago)
    src = source(sim)
    baseline = src.list_jobs(since=None, live=[])
    assert len(baseline) == 10_000
    naive = sim.calls["listservicejobs"]
    sim.calls.clear()
    live = [j for j in baseline if not j.status.terminal]
    src.list_jobs(since=datetime.now(UTC), live=live)
    steady = sim.calls["listservicejobs"] + sim.calls["describeservicejob"]
    # floor: one listing per live status (6, RUNNING has 3 pages of 100) ; we add the new-jobs listing
    floor = len(LIVE_STATUSES) + 2
    assert steady <= 1.5 * floor + 1, (steady, naive)
    assert naive >= 100


def test_many_jobs_that_left_are_found_by_one_listing_not_a_describe_each(sim: BatchSim) -> None:
    now = datetime.now(UTC)
    history = int((now - timedelta(days=30)).timestamp() * 1000)
    for n in range(5_000):
        sim.add(f"old-{n}", "SUCCEEDED", created_ms=history)
    today = int((now - timedelta(hours=3)).timestamp() * 1000)
    jobs = [sim.add(f"run-{n}", "RUNNING", created_ms=today + n) for n in range(150)]
    src = source(sim)
    live = [j for j in src.list_jobs(since=None, live=[]) if not j.status.terminal]
    for job in jobs[:100]:
        sim.set(job.job_id, "SUCCEEDED" if job.name != "run-7" else "FAILED")
    sim.calls.clear()
    seen = {j.name: j.status for j in src.list_jobs(since=now, live=live)}
    assert sum(s is JobStatus.SUCCEEDED for s in seen.values()) == 99 and seen["run-7"] is JobStatus.FAILED
    assert sim.calls["describeservicejob"] == 0  # the 150 jobs created today: two pages, not 100 Describes
    assert sim.calls["listservicejobs"] <= len(LIVE_STATUSES) + 2 + 2


def test_a_listing_dearer_than_describes_stops_early(sim: BatchSim) -> None:
    now = datetime.now(UTC)
    old = int((now - timedelta(days=30)).timestamp() * 1000)
    jobs = [sim.add(f"long-{n}", "RUNNING", created_ms=old) for n in range(3)]
    for n in range(2_000):  # history created after the three long runners
        sim.add(f"later-{n}", "SUCCEEDED", created_ms=old + 1000 + n)
    src = source(sim)
    live = [j for j in src.list_jobs(since=None, live=[]) if not j.status.terminal]
    for job in jobs:
        sim.set(job.job_id, "SUCCEEDED")
    sim.calls.clear()
    done = [j for j in src.list_jobs(since=now, live=live) if j.name.startswith("long-")]
    assert {j.status for j in done} == {JobStatus.SUCCEEDED} and len(done) == 3
    # the listing gives up once a page finds none of them (here the first), then Describes
    assert sim.calls["listservicejobs"] <= len(LIVE_STATUSES) + 1 + 1
    assert sim.calls["describeservicejob"] == 3


def test_one_filter_at_most_and_default_running_only(sim: BatchSim) -> None:
    sim.add("a", "RUNNABLE")
    sim.add("b", "RUNNING")
    import boto3

    client = boto3.client(
        "batch", region_name="us-east-1", endpoint_url=sim.url, aws_access_key_id="x", aws_secret_access_key="y"
    )
    assert [j["jobName"] for j in client.list_service_jobs(jobQueue="q")["jobSummaryList"]] == ["b"]
    with pytest.raises(client.exceptions.ClientException):
        client.list_service_jobs(
            jobQueue="q",
            filters=[{"name": "AFTER_CREATED_AT", "values": ["0"]}, {"name": "JOB_NAME", "values": ["a"]}],
        )


def test_terminate_sends_the_id_and_reason_once_and_the_job_ends_stopped(sim: BatchSim) -> None:
    added = sim.add("sft-1", "RUNNING")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    result = src.stop_job(job, reason="Stopped from Slack by U1 (alice):\n wrong   data")
    assert result.accepted
    assert sim.stops == [{"jobId": added.job_id, "reason": "Stopped from Slack by U1 (alice): wrong data"}]
    detail = src.get_job(job.id)
    assert detail is not None
    assert (detail.status, detail.native_status) == (JobStatus.STOPPING, "RUNNING")
    assert detail.reason == "Stopped from Slack by U1 (alice): wrong data"
    (after,) = src.list_jobs(since=None, live=[])
    assert (after.status, after.native_status) == (JobStatus.STOPPED, "FAILED")
    assert after.reason == "Stopped from Slack by U1 (alice): wrong data"


def test_terminate_reason_is_clipped_and_never_empty(sim: BatchSim) -> None:
    sim.add("a", "RUNNABLE")
    sim.add("b", "RUNNABLE")
    src = source(sim)
    first, second = src.list_jobs(since=None, live=[])
    src.stop_job(first, reason="x" * 5000)
    src.stop_job(second, reason="  ")
    assert [len(s["reason"]) for s in sim.stops] == [REASON_MAX, len("stopped from jobwatch")]


def test_terminating_a_finished_job_is_a_conflict(sim: BatchSim) -> None:
    sim.add("done", "SUCCEEDED")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    with pytest.raises(ConflictError, match="already in status SUCCEEDED"):
        src.stop_job(job, reason="U1: late")
    assert sim.calls["terminateservicejob"] == 1


def test_job_tags_come_from_describe_not_the_listing(sim: BatchSim) -> None:
    tagged = sim.add("llama", "RUNNING", tags={"owner": "alice"})
    sim.add("bare", "RUNNING")
    src = source(sim)
    jobs = {j.name: j for j in src.list_jobs(since=None, live=[])}
    assert all("owner" not in j.extra for j in jobs.values())
    sim.calls.clear()
    assert src.job_tags(jobs["llama"]) == {"owner": "alice"}
    assert src.job_tags(jobs["bare"]) == {}  # DescribeServiceJob leaves `tags` out when there are none
    assert sim.calls == {"describeservicejob": 2}
    assert src.runtime_limit(jobs["llama"]) is None  # the same answer serves the limit: no request
    assert sim.calls == {"describeservicejob": 2}
    sim.op_faults["describeservicejob"] = deque(["denied"])
    with pytest.raises(AuthError):
        source(sim).job_tags(jobs["llama"])  # a new adapter has no answer to reuse
    assert tagged.job_id in jobs["llama"].refs
