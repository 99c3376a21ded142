"""The SageMaker adapter against moto (boto3's own wire format) and the local simulator."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

from bot.sim.http import LocalServer, Request, Response
from bot.sim.sagemaker import SageMakerSim
from providers import (
    AuthError,
    ConflictError,
    Job,
    JobStatus,
    NotFoundError,
    ProviderError,
    ThrottledError,
    UnavailableError,
)
from providers.sagemaker import SageMakerQueue, SageMakerSource, status_of
from tests.conftest import AWS_ENV

REGION = "us-east-1"
ACCOUNT = "123456789012"


def queue(**kw: Any) -> SageMakerQueue:
    return SageMakerQueue(
        name="ml", region=REGION, access_key_env="TEST_AWS_KEY", secret_key_env="TEST_AWS_SECRET", **kw
    )


@pytest.fixture
def moto_sm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")


def create(client: Any, name: str) -> None:
    client.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r",
        OutputDataConfig={"S3OutputPath": "s3://b/o"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


def backend_job(name: str) -> Any:
    return sagemaker_backends[ACCOUNT][REGION].training_jobs[name]


def test_lists_every_page_from_moto(moto_sm: Any) -> None:
    for n in range(230):
        create(moto_sm, f"job-{n:03d}")
    backend_job("job-007").training_job_status = "InProgress"
    source = SageMakerSource(queue(), env=AWS_ENV)
    jobs = source.list_jobs(since=None, live=[])
    assert len(jobs) == 230
    by_name = {j.name: j for j in jobs}
    assert by_name["job-007"].status is JobStatus.RUNNING
    assert by_name["job-008"].status is JobStatus.SUCCEEDED
    assert by_name["job-008"].id.endswith(":training-job/job-008")
    assert by_name["job-008"].url == (
        "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/job-008"
    )
    assert all(j.created_at and j.created_at.tzinfo is UTC for j in jobs)


def test_failure_reason_comes_from_describe(moto_sm: Any) -> None:
    create(moto_sm, "bad")
    job = backend_job("bad")
    job.training_job_status = "Failed"
    job.failure_reason = "AlgorithmError: out of memory"
    source = SageMakerSource(queue(), env=AWS_ENV)
    detail = source.get_job(source.list_jobs(since=None, live=[])[0].id)
    assert detail is not None
    assert detail.status is JobStatus.FAILED
    assert detail.reason == "AlgorithmError: out of memory"


def test_deleted_job_is_none(moto_sm: Any) -> None:
    source = SageMakerSource(queue(), env=AWS_ENV)
    assert source.get_job(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/nope") is None


@pytest.mark.parametrize(
    ("primary", "secondary", "expected"),
    [
        ("InProgress", "Starting", JobStatus.QUEUED),
        ("InProgress", "Pending", JobStatus.QUEUED),
        ("InProgress", "Downloading", JobStatus.RUNNING),
        ("InProgress", "Training", JobStatus.RUNNING),
        ("InProgress", None, JobStatus.RUNNING),
        ("Stopping", "Stopping", JobStatus.STOPPING),
        ("Completed", "Completed", JobStatus.SUCCEEDED),
        ("Failed", "Failed", JobStatus.FAILED),
        ("Stopped", "MaxRuntimeExceeded", JobStatus.TIMED_OUT),
        ("Stopped", "MaxWaitTimeExceeded", JobStatus.TIMED_OUT),
        ("Stopped", "Stopped", JobStatus.STOPPED),
        ("Deleting", None, JobStatus.UNKNOWN),
        ("BrandNewStatus", None, JobStatus.UNKNOWN),
    ],
)
def test_status_map(primary: str, secondary: str | None, expected: JobStatus) -> None:
    assert status_of(primary, secondary) is expected


def sim_source(sim: SageMakerSim, **kw: Any) -> SageMakerSource:
    return SageMakerSource(queue(endpoint_url=sim.url), env=AWS_ENV, **kw)


def test_incremental_listing_sends_watermark_minus_overlap(sagemaker: SageMakerSim) -> None:
    old = sagemaker.add("old", status="Completed", secondary="Completed")
    old.modified = datetime.now(UTC) - timedelta(hours=2)
    sagemaker.add("fresh")
    source = sim_source(sagemaker)
    jobs = source.list_jobs(since=datetime.now(UTC) - timedelta(minutes=1), live=[])
    assert [j.name for j in jobs] == ["fresh"]
    assert sagemaker.requests == ["SageMaker.ListTrainingJobs"]


def test_throttling_that_outlasts_retries_raises(sagemaker: SageMakerSim) -> None:
    sagemaker.add("a")
    for _ in range(10):
        sagemaker.fail_next(400, "ThrottlingException")
    source = SageMakerSource(queue(endpoint_url=sagemaker.url), env=AWS_ENV, max_attempts=2)
    with pytest.raises(ThrottledError):
        source.list_jobs(since=None, live=[])


def test_missing_credentials_name_the_variable() -> None:
    with pytest.raises(AuthError, match="TEST_AWS_KEY"):
        SageMakerSource(queue(), env={})


def test_stop_sends_the_name_once_and_the_job_goes_stopping_then_stopped(sagemaker: SageMakerSim) -> None:
    sagemaker.add("train-1", status="InProgress", secondary="Training")
    source = sim_source(sagemaker)
    (job,) = source.list_jobs(since=None, live=[])
    result = source.stop_job(job, reason="U1 (alice): wrong data")
    assert result.accepted and "train-1" in result.message
    assert sagemaker.stops == ["train-1"]
    detail = source.get_job(job.id)
    assert detail is not None and (detail.status, detail.native_status) == (JobStatus.STOPPING, "Stopping")
    (after,) = source.list_jobs(since=None, live=[])
    assert (after.status, after.native_status) == (JobStatus.STOPPED, "Stopped")


def test_stopping_a_stopped_job_is_a_conflict_in_sagemakers_words(sagemaker: SageMakerSim) -> None:
    sagemaker.add("done", status="Stopped", secondary="Stopped")
    source = sim_source(sagemaker)
    (job,) = source.list_jobs(since=None, live=[])
    with pytest.raises(ConflictError, match="training job is in status Stopped"):
        source.stop_job(job, reason="U1: again")


def test_stopping_a_deleted_job_is_not_found(sagemaker: SageMakerSim) -> None:
    sagemaker.add("gone", status="InProgress")
    source = sim_source(sagemaker)
    (job,) = source.list_jobs(since=None, live=[])
    del sagemaker.jobs["gone"]
    with pytest.raises(NotFoundError):
        source.stop_job(job, reason="U1: stop")


def test_a_stop_without_an_answer_hits_its_deadline_once(sagemaker: SageMakerSim) -> None:
    """The stop call waits `stop_timeout` seconds, is not retried, and says the stop may have happened."""

    def late(req: Request) -> Response:
        time.sleep(1.0)
        return sagemaker.handle(req)

    slow = LocalServer(late).start()
    try:
        sagemaker.add("slow", status="InProgress")
        source = SageMakerSource(queue(endpoint_url=slow.url), env=AWS_ENV)
        source.stop_timeout = 0.2
        job = Job(queue="ml", id=sagemaker.jobs["slow"].arn, name="slow", status=JobStatus.RUNNING, native_status="x")
        with pytest.raises(UnavailableError, match="may still have been applied"):
            source.stop_job(job, reason="U1: stop")
        time.sleep(1.2)  # a retry, had there been one, would have reached the fake by now
        assert sagemaker.stops == ["slow"]
    finally:
        slow.stop()


def test_job_tags_from_moto_and_the_simulator_agree(moto_sm: Any) -> None:
    """ListTags against moto (boto3's wire format) and the simulator: key -> value, one request."""
    create(moto_sm, "tagged")
    arn = backend_job("tagged").arn
    moto_sm.add_tags(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "alice"}, {"Key": "team", "Value": "nlp"}])
    moto_source = SageMakerSource(queue(), env=AWS_ENV)
    (job,) = moto_source.list_jobs(since=None, live=[])
    assert job.extra.get("owner") is None  # the listing carries no tags
    assert moto_source.job_tags(job) == {"owner": "alice", "team": "nlp"}
    sim = SageMakerSim().start()
    try:
        sim.add("tagged", tags={"owner": "alice", "team": "nlp"})
        sim_source = SageMakerSource(queue(endpoint_url=sim.url), env=AWS_ENV)
        (listed,) = sim_source.list_jobs(since=None, live=[])
        sim.requests.clear()
        assert sim_source.job_tags(listed) == {"owner": "alice", "team": "nlp"}
        assert sim.requests == ["SageMaker.ListTags"]
    finally:
        sim.stop()


def test_job_tags_follow_pages_and_errors_are_provider_errors() -> None:
    sim = SageMakerSim().start()
    try:
        many = {f"k{n:02d}": str(n) for n in range(60)} | {"owner": "bob"}
        sim.add("many", tags=many)
        src = SageMakerSource(queue(endpoint_url=sim.url), env=AWS_ENV, max_attempts=0)
        (job,) = src.list_jobs(since=None, live=[])
        sim.requests.clear()
        assert src.job_tags(job) == many
        assert sim.requests == ["SageMaker.ListTags"] * 2  # 61 tags at 50 a page
        sim.op_errors["ListTags"] = deque([(400, "ThrottlingException")])
        with pytest.raises(ThrottledError):
            src.job_tags(job)
        gone = job.model_copy(update={"id": job.id + "-gone"})
        with pytest.raises(ProviderError, match="ListTags"):
            src.job_tags(gone)
    finally:
        sim.stop()
