"""The log tail of SageMaker and AWS Batch jobs (the LogTailing capability) against moto's CloudWatch
Logs, and the CloudWatch Logs simulator held to moto's answers for the calls jobwatch makes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.sim.logs import LogsSim
from providers import AuthError, Job, JobStatus, LogTail, LogTailing, ThrottledError, UnavailableError
from providers._logs import GROUP
from providers.aws_batch import BatchQueue, BatchSource
from providers.sagemaker import SageMakerQueue, SageMakerSource
from tests.conftest import AWS_ENV

REGION = "us-east-1"
ARN = f"arn:aws:sagemaker:{REGION}:123456789012:training-job/"
KEYS = {"access_key_env": "TEST_AWS_KEY", "secret_key_env": "TEST_AWS_SECRET"}


def sagemaker(**kw: Any) -> SageMakerSource:
    return SageMakerSource(SageMakerQueue(name="ml", region=REGION, log_tail=True, **KEYS, **kw), env=AWS_ENV)


def batch(**kw: Any) -> BatchSource:
    config = BatchQueue(name="b", region=REGION, job_queue="gpu", log_tail=True, **KEYS, **kw)
    return BatchSource(config, env=AWS_ENV)


def failed(name: str) -> Job:
    return Job(queue="ml", id=ARN + name, name=name, status=JobStatus.FAILED, native_status="Failed")


@pytest.fixture
def moto_logs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("logs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")


def put(client: Any, stream: str, lines: list[str]) -> None:
    client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    start = int(time.time() * 1000) - len(lines)  # CloudWatch (and moto) drop events over 14 days old
    events = [{"timestamp": start + n, "message": line} for n, line in enumerate(lines)]
    client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)


def test_sagemaker_reads_the_last_20_lines_of_algo_1_oldest_first(moto_logs: Any) -> None:
    moto_logs.create_log_group(logGroupName=GROUP)
    put(moto_logs, "bert/algo-1-1700000000", [f"line {n}" for n in range(50)])
    put(moto_logs, "bert/algo-2-1700000000", ["the other instance"])
    put(moto_logs, "bert-2/algo-1-1700000000", ["another job whose name starts the same"])
    source = sagemaker()
    assert isinstance(source, LogTailing)
    tail = source.log_tail(failed("bert"), lines=20)
    assert tail == LogTail(source=f"{GROUP} bert/algo-1-1700000000", lines=tuple(f"line {n}" for n in range(30, 50)))


def test_a_restarted_job_is_read_from_its_newest_stream(moto_logs: Any) -> None:
    moto_logs.create_log_group(logGroupName=GROUP)
    put(moto_logs, "bert/algo-1-1700000000", ["first try"])
    put(moto_logs, "bert/algo-1-1700000900", ["second try", "OOM"])
    tail = sagemaker().log_tail(failed("bert"), lines=20)
    assert tail is not None and tail.lines == ("second try", "OOM")


def test_no_stream_or_no_group_is_no_log_not_an_error(moto_logs: Any) -> None:
    assert sagemaker().log_tail(failed("bert"), lines=20) is None  # the account has no such log group
    moto_logs.create_log_group(logGroupName=GROUP)
    put(moto_logs, "other/algo-1-1700000000", ["not ours"])
    assert sagemaker().log_tail(failed("bert"), lines=20) is None


def test_batch_reads_the_log_of_the_training_job_its_attempt_started(moto_logs: Any) -> None:
    moto_logs.create_log_group(logGroupName=GROUP)
    put(moto_logs, "llama-run-7/algo-1-1700000000", ["Traceback", "ValueError: bad shard"])
    source = batch()
    summary = {
        "jobId": "j-1",
        "jobName": "llama",
        "jobArn": f"arn:aws:batch:{REGION}:123456789012:service-job/j-1",
        "serviceJobType": "SAGEMAKER_TRAINING",
        "status": "FAILED",
        "statusReason": "Essential container exited",
        "latestAttempt": {"serviceResourceId": {"name": "TrainingJobArn", "value": ARN + "llama-run-7"}},
    }
    job = source.to_job(summary)
    assert job.extra["training_job"] == "llama-run-7"
    tail = source.log_tail(job, lines=20)
    assert tail is not None and tail.lines == ("Traceback", "ValueError: bad shard")
    # Failed before SageMaker started anything: no attempt, no log, and no request.
    early = source.to_job({k: v for k, v in summary.items() if k != "latestAttempt"})
    assert source.log_tail(early, lines=20) is None


@pytest.fixture
def sim() -> Iterator[LogsSim]:
    server = LogsSim().start()
    yield server
    server.stop()


def test_two_requests_per_tail_and_none_when_there_is_no_stream(sim: LogsSim) -> None:
    sim.write(GROUP, "bert/algo-1-1700000000", ["a", "b"])
    source = sagemaker(logs_endpoint_url=sim.url)
    assert source.log_tail(failed("bert"), lines=20) is not None
    assert sim.requests == ["Logs_20140328.DescribeLogStreams", "Logs_20140328.GetLogEvents"]
    sim.requests.clear()
    assert source.log_tail(failed("gpt"), lines=20) is None
    assert sim.requests == ["Logs_20140328.DescribeLogStreams"]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "ThrottlingException", ThrottledError),
        (500, "ServiceUnavailableException", UnavailableError),
        (400, "AccessDeniedException", AuthError),
    ],
)
def test_errors_are_provider_errors_and_never_retried_by_the_client(
    sim: LogsSim, status: int, code: str, error: type[Exception]
) -> None:
    sim.write(GROUP, "bert/algo-1-1700000000", ["a"])
    sim.fail_next(status, code)
    with pytest.raises(error):
        sagemaker(logs_endpoint_url=sim.url).log_tail(failed("bert"), lines=20)
    assert len(sim.requests) == 1  # one request: the caller decides about retries, later


# -- the simulator answers like moto for the calls jobwatch makes --------------------------------


def calls(client: Any) -> dict[str, Any]:
    """The calls of providers/_logs.py (and their error codes), reduced to what can be compared."""
    out: dict[str, Any] = {}
    for key, prefix in (("ours", "bert/"), ("none", "gpt/")):
        found = client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=prefix)
        out[key] = [(s["logStreamName"], sorted(s)) for s in found["logStreams"]]
    page = client.get_log_events(logGroupName=GROUP, logStreamName="bert/algo-1-1", limit=3, startFromHead=False)
    out["tail"] = [(e["message"], sorted(e)) for e in page["events"]]
    out["tail_keys"] = sorted(k for k in page if k != "ResponseMetadata")
    page = client.get_log_events(logGroupName=GROUP, logStreamName="bert/algo-1-1", limit=50, startFromHead=False)
    out["all"] = [e["message"] for e in page["events"]]
    for key, kwargs in (
        ("no_group", {"logGroupName": "/nope"}),
        ("no_stream", {"logGroupName": GROUP, "logStreamName": "bert/algo-9-1"}),
    ):
        try:
            if "logStreamName" in kwargs:
                client.get_log_events(**kwargs, limit=3, startFromHead=False)
            else:
                client.describe_log_streams(**kwargs, logStreamNamePrefix="bert/")
        except client.exceptions.ResourceNotFoundException as err:
            out[key] = (err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"])
    return out


LINES = ["one", "two", "three", "four <!channel> & `x`"]


def test_the_simulator_answers_like_moto(sim: LogsSim) -> None:
    for stream in ("bert/algo-1-1", "bert/algo-2-1", "bert-2/algo-1-1"):
        sim.write(GROUP, stream, LINES)
    ours = calls(logs_client(endpoint_url=sim.url))
    with mock_aws():
        client = logs_client()
        client.create_log_group(logGroupName=GROUP)
        for stream in ("bert/algo-1-1", "bert/algo-2-1", "bert-2/algo-1-1"):
            put(client, stream, LINES)
        theirs = calls(client)
    assert ours == theirs
    assert ours["tail"][-1][0] == LINES[-1] and len(ours["tail"]) == 3  # the latest 3, oldest first


def logs_client(endpoint_url: str | None = None) -> Any:
    return boto3.client(
        "logs", region_name=REGION, endpoint_url=endpoint_url, aws_access_key_id="x", aws_secret_access_key="y"
    )
