"""Events -> Job with each adapter's own parser, and the order of two states of one job."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers import BadResponseError, Job, JobStatus
from providers.aws_batch import BatchQueue, BatchSource
from providers.base import EventReading, reads_events
from providers.events import stale
from providers.modzy import ModzySource
from providers.sagemaker import SageMakerQueue, SageMakerSource

ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/kmeans-1"
# The documented sample (automating-sagemaker-with-eventbridge): times are epoch ms in strings.
SAGEMAKER_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "844e2571-85d4-695f-b930-0153b71dcb42",
    "detail-type": "SageMaker Training Job State Change",
    "source": "aws.sagemaker",
    "account": "123456789012",
    "time": "2018-10-06T12:26:13Z",
    "region": "us-east-1",
    "resources": [ARN],
    "detail": {
        "TrainingJobName": "kmeans-1",
        "TrainingJobArn": ARN,
        "TrainingJobStatus": "Failed",
        "SecondaryStatus": "Failed",
        "FailureReason": "AlgorithmError: CUDA out of memory",
        "HyperParameters": {},
        "AlgorithmSpecification": {},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "InputDataConfig": [],
        "OutputDataConfig": {},
        "ResourceConfig": {},
        "VpcConfig": {},
        "StoppingCondition": {},
        "CreationTime": "1583831889050",
        "TrainingStartTime": "1583831889050",
        "TrainingEndTime": "1583831999050",
        "LastModifiedTime": "1583831999050",
        "SecondaryStatusTransitions": [],
        "Tags": {},
    },
}
BATCH_ARN = "arn:aws:batch:us-east-1:123456789012:service-job/4c7599ae-0a82-49aa-ba5a-4727fcce14a8"
# The documented sample (service-job-events), a job whose first attempt completed.
BATCH_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "c8f9c4b5-76e5-d76a-f980-7011e206042b",
    "detail-type": "Batch Service Job State Change",
    "source": "aws.batch",
    "account": "123456789012",
    "time": "2022-01-11T23:36:40Z",
    "region": "us-east-1",
    "resources": [BATCH_ARN],
    "detail": {
        "attempts": [
            {
                "serviceResourceId": {
                    "name": "TrainingJobArn",
                    "value": "arn:aws:sagemaker:us-east-1:123456789012:training-job/AWSBatchmy-training-job88b6",
                },
                "startedAt": 1641944300058,
                "stoppedAt": 1641944400058,
                "statusReason": "Received status from SageMaker: Training job completed",
            }
        ],
        "createdAt": 1641944200058,
        "jobArn": BATCH_ARN,
        "jobId": "4c7599ae-0a82-49aa-ba5a-4727fcce14a8",
        "jobName": "event-test",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/HappyPathJobQueue",
        "latestAttempt": {
            "serviceResourceId": {
                "name": "TrainingJobArn",
                "value": "arn:aws:sagemaker:us-east-1:123456789012:training-job/AWSBatchmy-training-job88b6",
            }
        },
        "retryStrategy": {"attempts": 1, "evaluateOnExit": []},
        "serviceJobType": "SAGEMAKER_TRAINING",
        "startedAt": 1641944300058,
        "status": "SUCCEEDED",
        "statusReason": "Received status from SageMaker: Training job completed",
        "stoppedAt": 1641944400058,
        "timeoutConfig": {"attemptDurationSeconds": 60},
    },
}


def sagemaker(**keys: Any) -> SageMakerSource:
    config = SageMakerQueue(name="ml", provider="sagemaker", region="us-east-1", **keys)
    return SageMakerSource(config, client=object())


def batch(job_queue: str = "HappyPathJobQueue") -> BatchSource:
    config = BatchQueue(name="gpu", provider="batch", region="us-east-1", job_queue=job_queue)
    return BatchSource(config, client=object())


def with_detail(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(event)
    out["detail"].update(changes)
    return out


def test_sagemaker_event_becomes_the_job_a_listing_would_give() -> None:
    job = sagemaker().job_from_event(SAGEMAKER_EVENT)
    assert job is not None
    assert (job.queue, job.id, job.name) == ("ml", ARN, "kmeans-1")
    assert job.status is JobStatus.FAILED and job.native_status == "Failed"
    assert job.reason == "AlgorithmError: CUDA out of memory"
    assert job.updated_at == datetime(2020, 3, 10, 9, 19, 59, 50000, tzinfo=UTC)
    assert job.created_at == datetime(2020, 3, 10, 9, 18, 9, 50000, tzinfo=UTC)
    assert job.url is not None and job.url.endswith("#/jobs/kmeans-1")


def test_sagemaker_event_times_as_numbers_and_secondary_statuses() -> None:
    event = with_detail(
        SAGEMAKER_EVENT,
        TrainingJobStatus="InProgress",
        SecondaryStatus="LaunchingMLInstances",
        LastModifiedTime=1583831999050,
        TrainingEndTime=None,
    )
    job = sagemaker().job_from_event(event)
    assert job is not None and job.status is JobStatus.QUEUED
    assert job.updated_at == datetime(2020, 3, 10, 9, 19, 59, 50000, tzinfo=UTC)
    stopped = sagemaker().job_from_event(
        with_detail(SAGEMAKER_EVENT, TrainingJobStatus="Stopped", SecondaryStatus="MaxRuntimeExceeded")
    )
    assert stopped is not None and stopped.status is JobStatus.TIMED_OUT


@pytest.mark.parametrize(
    "change",
    [
        {"source": "aws.batch"},
        {"detail-type": "SageMaker Processing Job State Change"},
        {"region": "eu-west-1"},
    ],
)
def test_sagemaker_foreign_events_are_none(change: dict[str, str]) -> None:
    assert sagemaker().job_from_event({**SAGEMAKER_EVENT, **change}) is None


def test_sagemaker_name_filter_scopes_events() -> None:
    assert sagemaker(name_contains="bert").job_from_event(SAGEMAKER_EVENT) is None
    assert sagemaker(name_contains="kmeans").job_from_event(SAGEMAKER_EVENT) is not None


@pytest.mark.parametrize(
    "event",
    [
        {"version": "0", "source": "aws.sagemaker"},  # no detail-type, no detail
        {**SAGEMAKER_EVENT, "detail": "Completed"},
        {**SAGEMAKER_EVENT, "time": "yesterday"},
        {**SAGEMAKER_EVENT, "detail": {"TrainingJobArn": ARN, "TrainingJobStatus": "Completed"}},
        with_detail(SAGEMAKER_EVENT, LastModifiedTime="soon"),
        with_detail(SAGEMAKER_EVENT, TrainingJobArn=None),
        with_detail(SAGEMAKER_EVENT, TrainingJobStatus=None),
    ],
)
def test_sagemaker_malformed_events_raise_bad_response(event: dict[str, Any]) -> None:
    with pytest.raises(BadResponseError):
        sagemaker().job_from_event(event)


def test_malformed_envelope_is_refused_before_any_field_is_read() -> None:
    with pytest.raises(BadResponseError, match="not a JSON object"):
        sagemaker().job_from_event(["not", "an", "event"])  # type: ignore[arg-type]


def test_batch_event_becomes_the_job_a_describe_would_give() -> None:
    job = batch().job_from_event(BATCH_EVENT)
    assert job is not None
    assert (job.queue, job.id, job.name, job.refs) == (
        "gpu",
        BATCH_ARN,
        "event-test",
        (BATCH_EVENT["detail"]["jobId"],),
    )
    assert job.status is JobStatus.SUCCEEDED and job.native_status == "SUCCEEDED"
    assert job.updated_at == datetime.fromtimestamp(1641944400.058, tz=UTC)
    assert job.extra["training_job"] == "AWSBatchmy-training-job88b6"
    assert "attempt" not in job.extra  # its first attempt: nothing to say about retries


def test_batch_event_of_a_retried_job_knows_its_attempt() -> None:
    first = BATCH_EVENT["detail"]["attempts"][0]
    retry = with_detail(
        BATCH_EVENT,
        status="RUNNABLE",
        stoppedAt=None,
        statusReason="spot interruption",
        retryStrategy={"attempts": 3},
        attempts=[{**first, "statusReason": "InternalServerError: spot capacity reclaimed"}],
    )
    job = batch().job_from_event(retry)
    assert job is not None and job.status is JobStatus.QUEUED
    assert (job.extra["attempt"], job.extra["attempts_max"]) == (2, 3)


@pytest.mark.parametrize("job_queue", ["HappyPathJobQueue", BATCH_EVENT["detail"]["jobQueue"]])
def test_batch_events_of_the_job_queue_by_name_or_arn(job_queue: str) -> None:
    assert batch(job_queue).job_from_event(BATCH_EVENT) is not None


@pytest.mark.parametrize(
    ("job_queue", "change"),
    [
        ("OtherQueue", {}),
        ("arn:aws:batch:us-east-1:999999999999:job-queue/HappyPathJobQueue", {}),  # same name, other account
        ("HappyPathJobQueue", {"region": "us-west-2"}),
        ("HappyPathJobQueue", {"detail-type": "Batch Job State Change"}),  # a container job
        ("HappyPathJobQueue", {"source": "aws.sagemaker"}),
    ],
)
def test_batch_foreign_events_are_none(job_queue: str, change: dict[str, str]) -> None:
    assert batch(job_queue).job_from_event({**BATCH_EVENT, **change}) is None


@pytest.mark.parametrize(
    "event",
    [
        with_detail(BATCH_EVENT, jobQueue=None, jobId="x") | {"detail": {"jobId": "x", "status": "RUNNING"}},
        with_detail(BATCH_EVENT, jobId=None) | {"detail": {"jobQueue": "HappyPathJobQueue", "status": "RUNNING"}},
        with_detail(BATCH_EVENT, createdAt="yesterday"),
        with_detail(BATCH_EVENT, status=7),
    ],
)
def test_batch_malformed_events_raise_bad_response(event: dict[str, Any]) -> None:
    with pytest.raises(BadResponseError):
        batch().job_from_event(event)


def test_which_adapters_read_events() -> None:
    assert isinstance(sagemaker(), EventReading) and isinstance(batch(), EventReading)
    assert reads_events(SageMakerSource) and reads_events(BatchSource)
    assert not reads_events(ModzySource)


T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def job(status: JobStatus, native: str = "x", *, at: datetime | None = T0, attempt: int = 1) -> Job:
    extra: dict[str, str | int | float | bool | None] = {"attempt": attempt} if attempt > 1 else {}
    return Job(queue="q", id="j", name="j", status=status, native_status=native, updated_at=at, extra=extra)


@pytest.mark.parametrize(
    ("observed", "stored", "is_stale"),
    [
        (job(JobStatus.RUNNING, at=T0 + timedelta(seconds=1)), job(JobStatus.SUCCEEDED), True),  # never un-finish
        (job(JobStatus.RUNNING), job(JobStatus.QUEUED, at=T0 + timedelta(seconds=1)), True),  # older time
        (job(JobStatus.QUEUED, at=T0 + timedelta(seconds=1)), job(JobStatus.RUNNING), False),  # newer time wins
        (job(JobStatus.RUNNING), job(JobStatus.RUNNING), False),  # a duplicate: not stale, nothing new
        (job(JobStatus.QUEUED), job(JobStatus.RUNNING), True),  # same time: the status order
        (job(JobStatus.QUEUED, at=None), job(JobStatus.RUNNING), True),
        (job(JobStatus.QUEUED, attempt=2), job(JobStatus.RUNNING), False),  # a retry is news
        (job(JobStatus.RUNNING), job(JobStatus.QUEUED, attempt=2), True),  # the old attempt is not
        (job(JobStatus.FAILED), job(JobStatus.SUCCEEDED), False),  # both finished, same time
    ],
)
def test_stale(observed: Job, stored: Job, is_stale: bool) -> None:
    assert stale(observed, stored) is is_stale


def test_native_order_breaks_ties() -> None:
    order = BatchSource.native_order
    assert stale(job(JobStatus.RUNNING, "STARTING"), job(JobStatus.RUNNING, "RUNNING"), order)
    assert not stale(job(JobStatus.RUNNING, "RUNNING"), job(JobStatus.RUNNING, "STARTING"), order)
    # SCHEDULED may fall back to RUNNABLE: neither is older
    assert not stale(job(JobStatus.QUEUED, "RUNNABLE"), job(JobStatus.QUEUED, "SCHEDULED"), order)
