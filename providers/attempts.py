"""Attempts of a job its provider retries by itself (AWS Batch service jobs, PAI-DLC restarts).

An adapter that learns a job is on its second (or later) attempt records it in `Job.extra`:
ATTEMPT (the attempt now under way, or the last one once the job ended), ATTEMPTS_MAX (how many
the provider allows, when it says) and, for the attempt that failed last before a retry, its
reason (RETRY_REASON) and cause (RETRY_CAUSE, providers/causes.py). A job never retried carries
none of them, so its stored fingerprint does not change. Adapters learn attempts from a detail
call made only when a listing shows an attempt boundary; between those calls they `carry` what
the stored job already knew.

The pipeline (bot/pipeline/diff.py, enqueue.py) makes a retry quiet: the status changes of a job
on attempt 2 or later (running -> queued -> running) announce nothing in the channel; each failed
attempt is one note in the job's thread (`retry_text`); the final outcome is an ordinary alert.
"""

from __future__ import annotations

from providers.causes import classify
from providers.model import ExtraValue, Job, JobStatus

ATTEMPT = "attempt"
ATTEMPTS_MAX = "attempts_max"
RETRY_REASON = "retry_reason"
RETRY_CAUSE = "retry_cause"
KEYS = (ATTEMPT, ATTEMPTS_MAX, RETRY_REASON, RETRY_CAUSE)
REASON_MAX = 300


def attempt_of(job: Job) -> int:
    """The job's attempt number as its adapter last learnt it (1 when it never said)."""
    value = job.extra.get(ATTEMPT)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def retry_extra(provider: str, *, attempt: int, max_attempts: int | None, reason: str | None) -> dict[str, ExtraValue]:
    """The `extra` entries of a job on `attempt` (nothing below 2); `reason` is that of the attempt
    that failed last before a retry, classified like a failed job's reason."""
    if attempt < 2:
        return {}
    text = " ".join((reason or "").split())[:REASON_MAX] or None
    out: dict[str, ExtraValue] = {
        ATTEMPT: attempt,
        RETRY_CAUSE: classify(provider, JobStatus.FAILED, text),
    }
    if max_attempts:
        out[ATTEMPTS_MAX] = max_attempts
    if text:
        out[RETRY_REASON] = text
    return out


def carry(job: Job, prior: Job | None) -> Job:
    """`job` (from a listing that does not show attempts) with the attempt entries `prior` (the
    stored job) had; unchanged when it had none or `job` has its own."""
    if prior is None or ATTEMPT not in prior.extra or ATTEMPT in job.extra:
        return job
    kept = {k: prior.extra[k] for k in KEYS if k in prior.extra}
    return job.model_copy(update={"extra": {**job.extra, **kept}})


def retry_text(job: Job) -> str | None:
    """`attempt 2 of 3 failed: spot_interruption, retrying` for a live job on attempt 3; None for a
    job not retrying. "of N" only when the provider said N and it still holds (Batch's capacity
    retries, for one, do not count against it)."""
    current = attempt_of(job)
    if current < 2 or job.status.terminal:
        return None
    failed = current - 1
    top = job.extra.get(ATTEMPTS_MAX)
    of = f" of {top}" if isinstance(top, int) and failed <= top else ""
    cause = job.extra.get(RETRY_CAUSE) or "unknown"
    return f"attempt {failed}{of} failed: {cause}, retrying"
