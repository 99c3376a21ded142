"""AWS Batch service jobs (SageMaker training jobs run through Batch): ListServiceJobs.

API: https://docs.aws.amazon.com/batch/latest/APIReference/API_ListServiceJobs.html
Quirks (docs/providers.md §AWS Batch): without `jobStatus` only RUNNING jobs are listed, and any filter
makes the service ignore `jobStatus` and return every status, newest first. So a poll is:
  - baseline: one AFTER_CREATED_AT=0 listing: every job, every status (even unknown ones);
  - steady state: one listing per live status, one AFTER_CREATED_AT listing (jobs born since
    the watermark, whatever their status: they may have started and ended between polls),
    and, for tracked live jobs that no longer appear in any of those (they left the live
    statuses), one listing of the jobs created since the oldest of them, for as long as its pages
    find them; DescribeServiceJob for any still missing. Cost grows with
    live and changed jobs, not with history.
Status is not monotonic (SCHEDULED may fall back to RUNNABLE): both are `queued`, so quiet.

Tags: DescribeServiceJob(jobId) returns `tags` (a map, absent when the job has none); ListServiceJobs
does not (botocore model batch 2016-08-10, ServiceJobSummary vs DescribeServiceJobResponse). One
request per job (IAM action batch:DescribeServiceJob, which the poller already uses).
Retries (https://docs.aws.amazon.com/batch/latest/userguide/service-job-retries.html): a job's
`retryStrategy.attempts` is the total number of times it may be put in RUNNABLE, the first
included; a failed attempt that has attempts left sends the job back to RUNNABLE with a new
SageMaker training job for the next attempt (capacity failures before STARTING are retried too,
without counting). ListServiceJobs shows no attempt count, only `latestAttempt.serviceResourceId`;
DescribeServiceJob lists `attempts[]` (serviceResourceId, startedAt, stoppedAt, statusReason)
and `retryStrategy` (botocore model batch 2016-08-10). So a job gets one Describe only when its
listing shows an attempt boundary against the stored job: it had started (running) and is queued
again, or it runs under another training job than before. The attempts go in `extra`
(providers/attempts.py); other listings carry the stored ones forward.

Runtime limit: DescribeServiceJob's `timeoutConfig.attemptDurationSeconds`, "the maximum duration in
seconds that a service job attempt can run" (https://docs.aws.amazon.com/batch/latest/APIReference/API_ServiceJobTimeout.html),
read once per job (the listing lacks it). A job Batch ended at it is FAILED with a status reason that
says so (TIMEOUT_HINTS, a string match: Batch publishes no dedicated status): `timed_out`.

Stop: TerminateServiceJob(jobId, reason), both required (botocore model batch 2016-08-10;
https://docs.aws.amazon.com/batch/latest/APIReference/API_TerminateServiceJob.html; IAM action
batch:TerminateServiceJob). The reason is returned by DescribeServiceJob; the model sets no
length limit, we clip it to REASON_MAX like TerminateJob's documented 1024. The job shows
`isTerminated` (stopping) and ends FAILED (stopped); Batch stops the SageMaker job too.

Events: "Batch Service Job State Change" (source aws.batch), one each time an existing service job
changes state, none for the submission itself
(https://docs.aws.amazon.com/batch/latest/userguide/service-job-events.html). Its `detail`
resembles a DescribeServiceJob answer without `tags` and `serviceRequestPayload`: jobArn, jobId,
jobName, jobQueue (an ARN), status, statusReason, createdAt/startedAt/stoppedAt (epoch ms),
attempts[], latestAttempt, retryStrategy, isTerminated. So `to_job` reads it as it reads a
Describe, attempts included. A job is first known from a listing (no event for its submission);
its events then arrive in no guaranteed order, and the bot orders them by status, attempt and
times (providers/events.py, `native_order` below).

Log tail: a service job's logs are those of the SageMaker training job its attempt started. The
listing already names it (`latestAttempt.serviceResourceId`, `{name: "TrainingJobArn", value:
<arn>}`; DescribeServiceJob has the same `latestAttempt` and every attempt in `attempts[]`, per
botocore's model batch 2016-08-10), so `to_job` keeps its name in `extra["training_job"]` and the
tail costs the same two CloudWatch Logs requests as a SageMaker job's (providers/_logs.py). A job
that failed before SageMaker started anything has no attempt, hence no log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from botocore.exceptions import BotoCoreError, ClientError

from providers._aws import AwsQueue, error_code, make_client, map_aws_error, map_aws_stop_error
from providers._logs import TrainingLogs
from providers._paging import PageGuard
from providers._parse import parsing
from providers._time import from_epoch_ms
from providers.attempts import carry, retry_extra
from providers.base import STOP_TIMEOUT, LogTail, StopResult, map_status
from providers.events import envelope
from providers.model import Job, JobStatus
from providers.sagemaker import console_url

STATUS_MAP: dict[str, JobStatus] = {
    "SUBMITTED": JobStatus.QUEUED,
    "PENDING": JobStatus.QUEUED,
    "RUNNABLE": JobStatus.QUEUED,
    "SCHEDULED": JobStatus.QUEUED,
    "STARTING": JobStatus.RUNNING,
    "RUNNING": JobStatus.RUNNING,
    "SUCCEEDED": JobStatus.SUCCEEDED,
    "FAILED": JobStatus.FAILED,
}
LIVE_STATUSES = tuple(s for s, c in STATUS_MAP.items() if not c.terminal)
TIMEOUT_HINTS = ("max runtime", "maxruntime", "timed out", "timeout")
OVERLAP = timedelta(minutes=5)
PAGE_SIZE = 100
REASON_MAX = 1024
EVENT_SOURCE = "aws.batch"
EVENT_TYPE = "Batch Service Job State Change"
# The order a service job goes through its statuses, for ordering two states of equal times and
# attempt. SCHEDULED is left out: a job may fall back from it to RUNNABLE (capacity).
NATIVE_ORDER = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
DETAIL_REUSE = 60.0  # seconds a DescribeServiceJob answer serves both the tag and the limit read
DETAILS_KEPT = 1_000


class BatchQueue(AwsQueue):
    """One Batch job queue of service jobs."""

    provider: Literal["batch"] = "batch"
    job_queue: str

    def holds(self, job_queue: str) -> bool:
        """Whether `job_queue` (an ARN in an event's detail) is this queue's `job_queue` (a name or an ARN)."""
        if ":job-queue/" in job_queue and ":job-queue/" in self.job_queue:
            return job_queue == self.job_queue
        return job_queue.rsplit(":job-queue/", 1)[-1] == self.job_queue.rsplit(":job-queue/", 1)[-1]

    def scope_text(self) -> str:
        """Region and job queue."""
        return f"region {self.region}, job queue {self.job_queue}"


def status_of(raw: Mapping[str, Any]) -> JobStatus:
    """Canonical status (docs/providers.md §AWS Batch, "Statuses": FAILED after terminate = stopped)."""
    native = str(raw.get("status", ""))
    terminated = bool(raw.get("isTerminated"))
    status = map_status("batch", native, STATUS_MAP)
    if status is JobStatus.FAILED:
        if terminated:
            return JobStatus.STOPPED
        reason = str(raw.get("statusReason") or "").lower()
        if any(hint in reason for hint in TIMEOUT_HINTS):
            return JobStatus.TIMED_OUT
    elif terminated and status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return JobStatus.STOPPING
    return status


def attempts_extra(raw: Mapping[str, Any], status: JobStatus) -> dict[str, str | int | float | bool | None]:
    """A DescribeServiceJob's attempts as `extra` entries (none for a job on its first attempt).

    Every attempt that stopped before the job ended failed and was retried. A live job is on the
    attempt after its stopped ones (between attempts, back in RUNNABLE, the next one is not listed
    yet); an ended job's last attempt is its last listed one.
    """
    attempts = [a for a in raw.get("attempts") or [] if isinstance(a, Mapping)]
    stopped = [a for a in attempts if a.get("stoppedAt")]
    current = max(len(attempts), 1) if status.terminal else len(stopped) + 1
    retried = stopped[: current - 1]
    strategy = raw.get("retryStrategy") or {}
    top = strategy.get("attempts") if isinstance(strategy, Mapping) else None
    reason = str(retried[-1].get("statusReason") or "") if retried else None
    return retry_extra("batch", attempt=current, max_attempts=top if isinstance(top, int) else None, reason=reason)


def boundary(job: Job, prior: Job) -> bool:
    """Whether the listing shows `job` past an attempt boundary against the stored `prior`: it ran
    and is queued again, or it runs under another training job (the console link names it)."""
    if prior.status is not JobStatus.RUNNING or job.status.terminal:
        return False
    return job.status is JobStatus.QUEUED or (job.url is not None and prior.url is not None and job.url != prior.url)


RANK = {JobStatus.UNKNOWN: 0, JobStatus.QUEUED: 1, JobStatus.RUNNING: 2, JobStatus.STOPPING: 3}


def _rank(status: JobStatus) -> int:
    return RANK.get(status, 4)


class BatchSource:
    """ListServiceJobs adapter."""

    provider: ClassVar[str] = "batch"
    stop_timeout: float = STOP_TIMEOUT  # deadline of a stop call, seconds

    def __init__(
        self,
        config: BatchQueue,
        *,
        env: Mapping[str, str] | None = None,
        client: Any = None,
        deadline_s: float = 120,
        max_attempts: int = 5,
        logs_client: Any = None,
    ) -> None:
        self.config = config
        self.deadline_s = deadline_s
        self._client = client or make_client("batch", config, env=env, max_attempts=max_attempts)
        self._env = env
        self._stop_client: Any = client  # made on first use: no retries, stop_timeout deadline
        self._logs = TrainingLogs(self, config, env=env, client=logs_client)
        self._details: dict[str, tuple[float, Mapping[str, Any]]] = {}  # job id -> (when, Describe answer)
        self._details_lock = threading.Lock()

    def to_job(self, raw: Mapping[str, Any]) -> Job:
        """A ServiceJobSummary or DescribeServiceJob response -> Job."""
        job_id = str(raw["jobId"])
        arn = str(raw.get("jobArn") or job_id)
        resource = (raw.get("latestAttempt") or {}).get("serviceResourceId") or {}
        training_arn = str(resource.get("value") or "")
        extra: dict[str, str | int | float | bool | None] = {"type": str(raw.get("serviceJobType", ""))}
        if raw.get("isTerminated"):
            extra["terminate_requested"] = True
        usage = raw.get("capacityUsage") or []
        if usage:
            extra["capacity"] = ", ".join(
                f"{float(u.get('quantity') or 0):g}× {u.get('capacityUnit')}" for u in usage[:3]
            )
        if raw.get("shareIdentifier"):
            extra["share"] = str(raw["shareIdentifier"])
        status = status_of(raw)
        if "attempts" in raw:  # a Describe: the attempts are known
            extra.update(attempts_extra(raw, status))
        url = None
        if "training-job/" in training_arn:
            training_job = training_arn.rsplit("training-job/", 1)[1]
            extra["training_job"] = training_job
            url = console_url(self.config.region, training_job)
        return Job(
            queue=self.config.name,
            id=arn,
            name=str(raw.get("jobName") or job_id),
            status=status,
            native_status=str(raw.get("status", "")),
            created_at=from_epoch_ms(raw.get("createdAt")),
            updated_at=from_epoch_ms(raw.get("stoppedAt") or raw.get("startedAt") or raw.get("scheduledAt")),
            started_at=from_epoch_ms(raw.get("startedAt")),
            ended_at=from_epoch_ms(raw.get("stoppedAt")),
            reason=raw.get("statusReason") or None,
            url=url,
            extra=extra,
            refs=(job_id,),
        )

    def _pages(self, what: str, params: dict[str, Any], guard: PageGuard) -> Iterator[Mapping[str, Any]]:
        for page in self._page_lists(what, params, guard):
            yield from page

    def _page_lists(self, what: str, params: dict[str, Any], guard: PageGuard) -> Iterator[list[Mapping[str, Any]]]:
        token: str | None = None
        while True:
            guard.next_page((what, token) if token else None)
            call = dict(params, nextToken=token) if token else params
            try:
                page = self._client.list_service_jobs(**call)
            except (ClientError, BotoCoreError) as err:
                raise map_aws_error(err, what=f"ListServiceJobs {what}") from err
            with parsing(self, "ListServiceJobs"):
                summaries = list(page["jobSummaryList"])
            yield summaries
            token = page.get("nextToken")
            if not token:
                return

    native_order: ClassVar[tuple[str, ...]] = NATIVE_ORDER

    def job_from_event(self, event: Mapping[str, Any]) -> Job | None:
        """A "Batch Service Job State Change" event -> Job (EventReading); None when it is another
        event, from another Region, or about a job of another job queue."""
        head = envelope(event)
        if head.source != EVENT_SOURCE or head.detail_type != EVENT_TYPE:
            return None
        if head.region and head.region != self.config.region:
            return None
        with parsing(self, "service job event"):
            if not isinstance(head.detail.get("status"), str) or not isinstance(head.detail.get("jobQueue"), str):
                raise TypeError("status and jobQueue must be strings")
            if not self.config.holds(head.detail["jobQueue"]):
                return None
            return self.to_job(head.detail)

    def list_jobs(self, *, since: datetime | None, live: Sequence[Job]) -> list[Job]:
        """Per-status listings, the newly created jobs, and Describe for live jobs that left."""
        guard = PageGuard(f"batch {self.config.name}", deadline_s=self.deadline_s)
        base = {"jobQueue": self.config.job_queue, "maxResults": PAGE_SIZE}
        found: dict[str, Job] = {}
        listings = [] if since is None else [(s, dict(base, jobStatus=s)) for s in LIVE_STATUSES]
        # A filter returns every status, including ones newer than this module: from the epoch
        # for the baseline, from the watermark (minus overlap) afterwards.
        cutoff = "0" if since is None else str(int((since - OVERLAP).timestamp() * 1000))
        listings.append(("created", dict(base, filters=[{"name": "AFTER_CREATED_AT", "values": [cutoff]}])))
        for what, params in listings:
            for raw in self._pages(what, params, guard):
                with parsing(self, "ListServiceJobs"):
                    job = self.to_job(raw)
                self._keep(found, job)
        missing = {job.id: job for job in live if job.id not in found}
        self._find_left(found, missing, base, guard)
        for job_id in missing:
            detail = self.get_job(job_id)
            if detail is not None:
                self._keep(found, detail)
        described = set(missing)
        stored = {job.id: job for job in live}
        for job_id, job in found.items():
            prior = stored.get(job_id)
            if prior is None or job_id in described:
                continue
            if boundary(job, prior):
                detail = self.get_job(job_id)  # one Describe per job at a boundary: its attempts
                if detail is not None:
                    found[job_id] = detail
                    continue
            found[job_id] = carry(job, prior)
        return list(found.values())

    def _find_left(
        self, found: dict[str, Job], missing: dict[str, Job], base: dict[str, Any], guard: PageGuard
    ) -> None:
        """Live jobs that left the live statuses, found by one listing of the jobs created since the
        oldest of them (every status, newest first) instead of a Describe each, for as long as every
        page pays for itself (finds at least one of them), so the worst case is one extra request."""
        born = [j.created_at for j in missing.values()]
        if len(missing) < 3 or any(b is None for b in born):
            return
        oldest = min(b for b in born if b is not None)
        after = str(int(oldest.timestamp() * 1000) - 1000)
        params = dict(base, filters=[{"name": "AFTER_CREATED_AT", "values": [after]}])
        wanted = len(missing)
        for pages, page in enumerate(self._page_lists("left", params, guard), 1):
            for raw in page:
                with parsing(self, "ListServiceJobs"):
                    job = self.to_job(raw)
                if missing.pop(job.id, None) is not None:
                    self._keep(found, job)
            if not missing or pages > wanted - len(missing):
                return  # done, or the pages cost more than the Describes they saved: never > wanted + 1

    @staticmethod
    def _keep(found: dict[str, Job], job: Job) -> None:
        """A job seen in two listings (it moved while we paged) keeps its most advanced state."""
        seen = found.get(job.id)
        if seen is None or _rank(job.status) >= _rank(seen.status):
            found[job.id] = job

    def get_job(self, job_id: str) -> Job | None:
        """DescribeServiceJob by ARN or id; None once the job is gone."""
        short = job_id.rsplit("service-job/", 1)[-1]
        try:
            raw = self._client.describe_service_job(jobId=short)
        except ClientError as err:
            if error_code(err) == "ClientException" and "not found" in str(err).lower():
                return None
            raise map_aws_error(err, what="DescribeServiceJob") from err
        except BotoCoreError as err:
            raise map_aws_error(err, what="DescribeServiceJob") from err
        with parsing(self, "DescribeServiceJob"):
            job = self.to_job(raw)
        return job

    def _detail(self, short: str) -> Mapping[str, Any]:
        """DescribeServiceJob of one job, shared by the tag and the limit reads of one poll: an answer
        is reused for DETAIL_REUSE seconds, so a job whose owner comes from a tag costs one request,
        not two."""
        now = time.monotonic()
        with self._details_lock:
            found = self._details.get(short)
            if found is not None and now - found[0] < DETAIL_REUSE:
                return found[1]
        try:
            raw = self._client.describe_service_job(jobId=short)
        except (ClientError, BotoCoreError) as err:
            raise map_aws_error(err, what="DescribeServiceJob") from err
        with self._details_lock:
            if len(self._details) >= DETAILS_KEPT:
                self._details.clear()
            self._details[short] = (now, raw)
        return dict(raw)

    def runtime_limit(self, job: Job) -> float | None:
        """DescribeServiceJob's `timeoutConfig.attemptDurationSeconds` (LimitReading): the most one
        attempt may run; None without one."""
        raw = self._detail(job.id.rsplit("service-job/", 1)[-1])
        with parsing(self, "DescribeServiceJob"):
            found = (raw.get("timeoutConfig") or {}).get("attemptDurationSeconds")
            return float(found) if isinstance(found, int | float) and found > 0 else None

    def job_tags(self, job: Job) -> dict[str, str]:
        """DescribeServiceJob's `tags`, key -> value (Taggable); a job gone since is a NotFoundError."""
        raw = self._detail(job.id.rsplit("service-job/", 1)[-1])
        with parsing(self, "DescribeServiceJob"):
            return {str(k): str(v) for k, v in (raw.get("tags") or {}).items()}

    def stop_job(self, job: Job, *, reason: str) -> StopResult:
        """TerminateServiceJob, once, with a deadline; `reason` (required by Batch) is kept on the job."""
        short = job.id.rsplit("service-job/", 1)[-1]
        text = " ".join(reason.split())[:REASON_MAX] or "stopped from jobwatch"
        what = f"AWS Batch TerminateServiceJob {job.name}"
        if self._stop_client is None:
            self._stop_client = make_client(
                "batch", self.config, env=self._env, read_timeout=self.stop_timeout, max_attempts=0
            )
        try:
            answer = self._stop_client.terminate_service_job(jobId=short, reason=text)
        except (ClientError, BotoCoreError) as err:
            raise map_aws_stop_error(err, what=what, permission="batch:TerminateServiceJob") from err
        return StopResult(
            accepted=True,
            message=f"AWS Batch accepted the termination of service job {job.name}: it ends FAILED (terminated).",
            request_id=(answer.get("ResponseMetadata") or {}).get("RequestId"),
        )

    def log_tail(self, job: Job, *, lines: int) -> LogTail | None:
        """The last `lines` lines of the log of the SageMaker training job the service job's latest
        attempt ran (None: no attempt started one, or it wrote nothing)."""
        training_job = job.extra.get("training_job")
        if not isinstance(training_job, str) or not training_job:
            return None
        return self._logs.tail(training_job, lines=lines)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()
        self._logs.close()
        if self._stop_client is not None and self._stop_client is not self._client:
            self._stop_client.close()
