"""Amazon SageMaker training jobs: ListTrainingJobs, incremental by LastModifiedTime.

API: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListTrainingJobs.html
Stop: StopTrainingJob(TrainingJobName) (IAM action sagemaker:StopTrainingJob); the job goes
Stopping, then Stopped (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StopTrainingJob.html).
Log tail: the job's CloudWatch Logs stream (providers/_logs.py), two requests.
Runtime limit: `StoppingCondition.MaxRuntimeInSeconds` of DescribeTrainingJob (one request per job,
read once; https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html). A
job stopped at it is `Stopped` with SecondaryStatus `MaxRuntimeExceeded` (the status list of
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_SecondaryStatusTransition.html):
`timed_out`, with that reason when SageMaker gives no FailureReason.
Tags: ListTags(ResourceArn) (IAM action sagemaker:ListTags); the listing has none. A resource has
at most 50 tags and ListTags pages at MaxResults >= 50, so one request per job, NextToken followed
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListTags.html).
Events: "SageMaker Training Job State Change" (source aws.sagemaker), sent to EventBridge in the
job's account and Region (https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
Its `detail` resembles a DescribeTrainingJob answer (TrainingJobName, TrainingJobArn,
TrainingJobStatus, SecondaryStatus, FailureReason when failed, CreationTime, LastModifiedTime,
TrainingStartTime, TrainingEndTime, ...); the documented sample writes the times as epoch
milliseconds in strings, so numbers and numeric strings are both read. SageMaker may send several
events for one change and the order is not guaranteed: the bot applies one only when it is newer
than what it stored (providers/events.py).
Quirk: with StatusEquals and MaxResults together, the service slices MaxResults jobs before
filtering, so pages may be empty while NextToken is set. We never send StatusEquals, always
set SortBy/SortOrder (the documented default order is contradictory), and page to the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from botocore.exceptions import BotoCoreError, ClientError

from providers._aws import AwsQueue, error_code, make_client, map_aws_error, map_aws_stop_error
from providers._logs import TrainingLogs
from providers._paging import PageGuard
from providers._parse import parsing
from providers._time import aware, from_epoch_ms, parse_iso
from providers.base import STOP_TIMEOUT, LogTail, StopResult, map_status
from providers.errors import BadResponseError
from providers.events import envelope
from providers.model import Job, JobStatus

PRIMARY: dict[str, JobStatus] = {
    "InProgress": JobStatus.RUNNING,
    "Stopping": JobStatus.STOPPING,
    "Completed": JobStatus.SUCCEEDED,
    "Failed": JobStatus.FAILED,
    "Stopped": JobStatus.STOPPED,
    "Deleting": JobStatus.UNKNOWN,
}
# Secondary statuses that mean an InProgress job has not started running yet.
QUEUED_SECONDARY = frozenset({"Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack"})
TIMEOUT_SECONDARY = frozenset({"MaxRuntimeExceeded", "MaxWaitTimeExceeded"})
# The LastModifiedTimeAfter filter is strict and clocks differ: look back a little.
OVERLAP = timedelta(minutes=5)
PAGE_SIZE = 100
TAG_PAGE = 50  # ListTags' MaxResults: at least 50 (botocore model), the most tags a resource can have
TAG_PAGES = 5  # a job's tag pages followed at most (one in practice)
EVENT_SOURCE = "aws.sagemaker"
EVENT_TYPE = "SageMaker Training Job State Change"
EVENT_TIMES = ("CreationTime", "LastModifiedTime", "TrainingStartTime", "TrainingEndTime")


class SageMakerQueue(AwsQueue):
    """A SageMaker account/region, optionally narrowed by a job-name substring."""

    provider: Literal["sagemaker"] = "sagemaker"
    name_contains: str | None = None

    def scope_text(self) -> str:
        """Region and name filter."""
        extra = f", name contains {self.name_contains!r}" if self.name_contains else ""
        return f"region {self.region}{extra}"


def status_of(primary: str, secondary: str | None) -> JobStatus:
    """Canonical status from TrainingJobStatus and SecondaryStatus (docs/providers.md §Amazon SageMaker)."""
    if primary == "InProgress" and secondary in QUEUED_SECONDARY:
        return JobStatus.QUEUED
    if primary == "Stopped" and secondary in TIMEOUT_SECONDARY:
        return JobStatus.TIMED_OUT
    return map_status("sagemaker", primary, PRIMARY)


def event_time(value: object) -> datetime | None:
    """A time of an event's detail: epoch milliseconds (a number or a numeric string, as in the
    documented sample) or an ISO-8601 string."""
    if isinstance(value, str) and value.strip() and not value.strip().isdigit():
        return parse_iso(value)
    return from_epoch_ms(value)


def timeout_reason(primary: str, secondary: object) -> str | None:
    """The reason of a job SageMaker stopped at its limit (it gives no FailureReason for it)."""
    if primary == "Stopped" and secondary == "MaxRuntimeExceeded":
        return "SageMaker stopped the job at its runtime limit (StoppingCondition.MaxRuntimeInSeconds)"
    if primary == "Stopped" and secondary == "MaxWaitTimeExceeded":
        return "SageMaker stopped the job at its wait limit (StoppingCondition.MaxWaitTimeInSeconds)"
    return None


def console_url(region: str, name: str) -> str:
    """The console page of one training job, built from a fixed template."""
    host = "console.amazonaws.cn" if region.startswith("cn-") else "console.aws.amazon.com"
    return f"https://{region}.{host}/sagemaker/home?region={region}#/jobs/{name}"


class SageMakerSource:
    """ListTrainingJobs adapter."""

    provider: ClassVar[str] = "sagemaker"
    stop_timeout: float = STOP_TIMEOUT  # deadline of a stop call, seconds

    def __init__(
        self,
        config: SageMakerQueue,
        *,
        env: Mapping[str, str] | None = None,
        client: Any = None,
        deadline_s: float = 120,
        max_attempts: int = 5,
        logs_client: Any = None,
    ) -> None:
        self.config = config
        self.deadline_s = deadline_s
        self._client = client or make_client("sagemaker", config, env=env, max_attempts=max_attempts)
        self._env = env
        self._stop_client: Any = client  # made on first use: no retries, stop_timeout deadline
        self._logs = TrainingLogs(self, config, env=env, client=logs_client)

    def to_job(self, raw: Mapping[str, Any]) -> Job:
        """One TrainingJobSummary or DescribeTrainingJob response -> Job."""
        name = str(raw["TrainingJobName"])
        primary = str(raw["TrainingJobStatus"])
        secondary = raw.get("SecondaryStatus")
        native = f"{primary} ({secondary})" if secondary and secondary != primary else primary
        extra: dict[str, str | int | float | bool | None] = {}
        if secondary:
            extra["secondary_status"] = str(secondary)
        if raw.get("WarmPoolStatus"):
            extra["warm_pool"] = str(raw["WarmPoolStatus"].get("Status", ""))
        return Job(
            queue=self.config.name,
            id=str(raw["TrainingJobArn"]),
            name=name,
            status=status_of(primary, secondary),
            native_status=native,
            created_at=aware(raw.get("CreationTime")),
            updated_at=aware(raw.get("LastModifiedTime")),
            started_at=aware(raw.get("TrainingStartTime")),
            ended_at=aware(raw.get("TrainingEndTime")),
            reason=raw.get("FailureReason") or timeout_reason(primary, secondary),
            url=console_url(self.config.region, name),
            extra=extra,
        )

    native_order: ClassVar[tuple[str, ...]] = ()  # LastModifiedTime orders the changes

    def job_from_event(self, event: Mapping[str, Any]) -> Job | None:
        """A "SageMaker Training Job State Change" event -> Job (EventReading); None when it is another
        event, from another Region, or about a job outside the name filter."""
        head = envelope(event)
        if head.source != EVENT_SOURCE or head.detail_type != EVENT_TYPE:
            return None
        if head.region and head.region != self.config.region:
            return None
        detail = head.detail
        with parsing(self, "training job event"):
            name = detail["TrainingJobName"]
            if not isinstance(name, str) or not isinstance(detail.get("TrainingJobStatus"), str):
                raise TypeError("TrainingJobName and TrainingJobStatus must be strings")
            if self.config.name_contains and self.config.name_contains not in name:
                return None
            raw = dict(detail)
            for key in EVENT_TIMES:
                raw[key] = event_time(detail.get(key))
            job = self.to_job(raw)
        if not job.id.startswith("arn:"):
            raise BadResponseError(f"sagemaker {self.config.name}: event without a TrainingJobArn: {job.id!r}")
        return job

    def list_jobs(self, *, since: datetime | None, live: Sequence[Job]) -> list[Job]:
        """Every job modified since `since` (minus an overlap), all pages, newest first."""
        params: dict[str, Any] = {
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": PAGE_SIZE,
        }
        if self.config.name_contains:
            params["NameContains"] = self.config.name_contains
        if since is not None:
            params["LastModifiedTimeAfter"] = since - OVERLAP
        guard = PageGuard(f"sagemaker {self.config.name}", deadline_s=self.deadline_s)
        jobs: dict[str, Job] = {}
        token: str | None = None
        while True:
            guard.next_page(token)
            call = dict(params, NextToken=token) if token else params
            try:
                page = self._client.list_training_jobs(**call)
            except (ClientError, BotoCoreError) as err:
                raise map_aws_error(err, what="ListTrainingJobs") from err
            with parsing(self, "ListTrainingJobs"):
                for raw in page["TrainingJobSummaries"]:
                    job = self.to_job(raw)
                    jobs[job.id] = job
            token = page.get("NextToken")
            if not token:
                return list(jobs.values())

    def get_job(self, job_id: str) -> Job | None:
        """DescribeTrainingJob by ARN or name; None once the job is gone."""
        name = job_id.rsplit("training-job/", 1)[-1]
        try:
            raw = self._client.describe_training_job(TrainingJobName=name)
        except ClientError as err:
            if error_code(err) in ("ValidationException", "ResourceNotFound"):
                return None
            raise map_aws_error(err, what="DescribeTrainingJob") from err
        except BotoCoreError as err:
            raise map_aws_error(err, what="DescribeTrainingJob") from err
        with parsing(self, "DescribeTrainingJob"):
            job = self.to_job(raw)
        return job

    def runtime_limit(self, job: Job) -> float | None:
        """DescribeTrainingJob's `StoppingCondition.MaxRuntimeInSeconds` (LimitReading); None without one."""
        name = job.id.rsplit("training-job/", 1)[-1]
        try:
            raw = self._client.describe_training_job(TrainingJobName=name)
        except (ClientError, BotoCoreError) as err:
            raise map_aws_error(err, what="DescribeTrainingJob") from err
        with parsing(self, "DescribeTrainingJob"):
            found = (raw.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
            return float(found) if isinstance(found, int | float) and found > 0 else None

    def job_tags(self, job: Job) -> dict[str, str]:
        """ListTags of the job's ARN: its tags, key -> value (Taggable)."""
        params: dict[str, Any] = {"ResourceArn": job.id, "MaxResults": TAG_PAGE}
        tags: dict[str, str] = {}
        for _ in range(TAG_PAGES):
            try:
                page = self._client.list_tags(**params)
            except (ClientError, BotoCoreError) as err:
                raise map_aws_error(err, what="ListTags") from err
            with parsing(self, "ListTags"):
                tags.update((str(t["Key"]), str(t.get("Value") or "")) for t in page.get("Tags") or ())
            token = page.get("NextToken")
            if not token or token == params.get("NextToken"):
                break
            params["NextToken"] = token
        return tags

    def stop_job(self, job: Job, *, reason: str) -> StopResult:
        """StopTrainingJob, once, with a deadline; SageMaker keeps no reason (`reason` is unused)."""
        name = job.id.rsplit("training-job/", 1)[-1]
        what = f"SageMaker StopTrainingJob {name}"
        if self._stop_client is None:
            self._stop_client = make_client(
                "sagemaker", self.config, env=self._env, read_timeout=self.stop_timeout, max_attempts=0
            )
        try:
            answer = self._stop_client.stop_training_job(TrainingJobName=name)
        except (ClientError, BotoCoreError) as err:
            raise map_aws_stop_error(err, what=what, permission="sagemaker:StopTrainingJob") from err
        return StopResult(
            accepted=True,
            message=f"SageMaker accepted the stop of training job {name}: it goes Stopping, then Stopped.",
            request_id=(answer.get("ResponseMetadata") or {}).get("RequestId"),
        )

    def log_tail(self, job: Job, *, lines: int) -> LogTail | None:
        """The last `lines` lines of the training job's CloudWatch Logs stream (None: it has none)."""
        return self._logs.tail(job.id.rsplit("training-job/", 1)[-1], lines=lines)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()
        self._logs.close()
        if self._stop_client is not None and self._stop_client is not self._client:
            self._stop_client.close()
