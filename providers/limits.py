"""Runtime limits: how long a job may run before its provider stops it, where the job declares one.

Where each provider keeps the limit (docs/failures.md gives the references):

- SageMaker: `StoppingCondition.MaxRuntimeInSeconds` of DescribeTrainingJob (the listing lacks it):
  one request per job, read once (`LimitReading`). A job SageMaker stopped at the limit is
  `Stopped` with SecondaryStatus `MaxRuntimeExceeded`: canonical `timed_out`.
- AWS Batch service jobs: `timeoutConfig.attemptDurationSeconds` of DescribeServiceJob (the listing
  lacks it): one request per job, read once. The limit is per attempt, counted from its start. A job
  Batch ended at the limit is `FAILED` with a status reason that says so: `timed_out`.
- PAI-DLC: the job's maximum running time, `JobMaxRunningTimeMinutes` (set at CreateJob), read
  from the DLC job the bulk listing already returns when the answer carries it: no extra request.
- Modzy: the jobs object's `timeout`, from the listing: no extra request. A job Modzy ended at its
  timeout is `TIMEDOUT`: `timed_out`.

The limit is kept in `Job.extra[LIMIT_KEY]`, in seconds, and stored with the job's snapshot; the
bot carries it onto the job each time the listing shows it again (bot/pipeline/limits.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, Protocol, runtime_checkable

from providers.model import Job

LIMIT_KEY = "limit_s"  # the job's runtime limit, seconds


@runtime_checkable
class LimitReading(Protocol):
    """An adapter that reads one job's runtime limit where its listing lacks it (an optional
    capability): one request (SageMaker DescribeTrainingJob, AWS Batch DescribeServiceJob); None when
    the job declares none. The bot asks once per live job, within `deadline_s`."""

    provider: ClassVar[str]
    deadline_s: float

    def runtime_limit(self, job: Job) -> float | None: ...


def limit_of(job: Job) -> float | None:
    """The job's runtime limit in seconds, if it declares one."""
    found = job.extra.get(LIMIT_KEY)
    return float(found) if isinstance(found, int | float) and not isinstance(found, bool) and found > 0 else None


def with_limit(job: Job, seconds: float | None) -> Job:
    """`job` carrying its runtime limit (unchanged when `seconds` is None or not positive)."""
    if seconds is None or seconds <= 0:
        return job
    return job.model_copy(update={"extra": {**job.extra, LIMIT_KEY: float(seconds)}})


def limit_ends(job: Job) -> datetime | None:
    """When the provider will stop the job at its limit: its start (creation, when the provider
    gives no start) plus the limit; None without a limit or a start."""
    limit, start = limit_of(job), job.started_at or job.created_at
    return None if limit is None or start is None else start + timedelta(seconds=limit)


def used(job: Job, now: datetime) -> float | None:
    """The share of its limit the job has used by `now` (0.0 to 1.0 and past), or None."""
    limit, start = limit_of(job), job.started_at or job.created_at
    if limit is None or start is None:
        return None
    return max(0.0, (now - start).total_seconds()) / limit
