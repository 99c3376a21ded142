"""Stage 1: run one adapter's listing and turn its outcome into a PollResult; never raises."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.clock import Clock
from bot.pipeline.diff import DiffResult, Transition
from providers import Job, JobSource, JobStatus, ProviderError
from providers.causes import with_cause

log = logging.getLogger(__name__)

ENRICH = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.STOPPED})
MAX_ENRICH = 25  # detail calls per cycle; the rest alert without a reason rather than stall


@dataclass(frozen=True)
class PollResult:
    """A complete listing (`jobs`) or the reason there is none (`error`)."""

    queue: str
    started_at: datetime
    jobs: list[Job] | None = None
    error: str | None = None
    remedy: str | None = None  # set when waiting will not cure the error (ProviderError.retryable)


def poll_queue(source: JobSource, *, since: datetime | None, live: Sequence[Job], clock: Clock) -> PollResult:
    """List one queue; any failure becomes a failed result that changes nothing downstream."""
    queue = source.config.name
    started = clock()
    try:
        jobs = source.list_jobs(since=since, live=live)
    except ProviderError as err:
        log.warning("poll_failed queue=%s error=%s", queue, err)
        remedy = None if err.retryable else err.remedy or None
        return PollResult(queue, started, error=f"{type(err).__name__}: {err}"[:500], remedy=remedy)
    except Exception as err:  # an adapter bug must fail this poll, not the scheduler
        log.exception("poll_crashed queue=%s", queue)
        return PollResult(queue, started, error=f"internal error: {type(err).__name__}: {err}"[:500])
    foreign = [j.id for j in jobs if j.queue != queue]
    if foreign:
        return PollResult(queue, started, error=f"adapter returned jobs of another queue: {foreign[:3]}")
    return PollResult(queue, started, jobs=jobs)


def enrich(source: JobSource, result: DiffResult) -> DiffResult:
    """Fetch detail (the failure reason) for jobs that just ended badly; best effort, bounded.

    A detail call that fails, however it fails, leaves that job's alert without a reason: the
    listing was complete, so the transitions are sound and go out.
    """
    wanted = [t for t in result.transitions if t.job.status in ENRICH and t.job.reason is None][:MAX_ENRICH]
    if not wanted:
        return result
    fresh: dict[str, Job] = {}
    for t in wanted:
        try:
            detail = source.get_job(t.job.id)
        except ProviderError as err:
            log.info("enrich_failed queue=%s job_id=%s error=%s", t.job.queue, t.job.id, err)
            continue
        except Exception:  # an adapter bug in a detail call must not hold back the queue's alerts
            log.exception("enrich_crashed queue=%s job_id=%s", t.job.queue, t.job.id)
            continue
        if detail is not None and detail.reason and detail.status == t.job.status:
            fresh[t.job.id] = t.job.model_copy(update={"reason": detail.reason})
    if not fresh:
        return result
    return DiffResult(
        upserts=[fresh.get(j.id, j) for j in result.upserts],
        transitions=[Transition(fresh.get(t.job.id, t.job), t.old) for t in result.transitions],
    )


def with_causes(provider: str, result: DiffResult) -> DiffResult:
    """Every failed or timed-out job, stored and announced, with its failure cause in
    `extra["cause"]` (providers/causes.py); pure, after `enrich` so the detail's reason counts."""
    return DiffResult(
        upserts=[with_cause(provider, j) for j in result.upserts],
        transitions=[Transition(with_cause(provider, t.job), t.old) for t in result.transitions],
    )
