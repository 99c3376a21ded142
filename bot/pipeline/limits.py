"""Runtime limits: read each live job's limit once, keep it with the job, warn its thread at 80 % and 95 %.

Where a provider keeps a job's limit is providers/limits.py. SageMaker and AWS Batch list jobs
without it, so reading it costs one request per job (providers.limits.LimitReading); PAI-DLC and
Modzy put it on the job from their listing already. So:

- A live job's limit is read **once**: after a read the job carries `extra["limit_read"]` (and
  `limit_s` when it declares a limit), stored with its snapshot and carried onto the job each time
  the listing shows it again (the listing lacks them), so the job fingerprints the same and a
  restart reads nothing again. A failed read is tried again on the next cycles, MAX_TRIES in all.
- At most MAX_READS reads per cycle of one queue, within the adapter's deadline (bench/run.py counts
  them).
- A running job that has used WARN_AT[0] (80 %) of its limit gets one note in its thread, and one
  at WARN_AT[1] (95 %): "95 % of its 24 h limit used; it will be stopped at 14:05". The note is a
  thread reply of kind `note` (docs/architecture.md §Message policy: filtered by the job's name,
  only where the job has a thread; not written while a mute runs; never held by quiet hours, a
  reply does not notify the channel) whose alert_id `limit:<queue>:<job id>:<percent>` makes it
  once per job, threshold and channel across polls and restarts. A job first seen past 95 % gets
  only the 95 % note; a 80 % note never follows it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from bot.blocks.notes import limit_text
from bot.core.alert_ids import limit_id
from bot.pipeline.tags import read_each
from providers import Job, JobStatus, LimitReading
from providers.limits import LIMIT_KEY, limit_ends, used

log = logging.getLogger(__name__)

LIMIT_READ = "limit_read"
LIMIT_FAILURES = "limit_failures"
KEPT = (LIMIT_KEY, LIMIT_READ, LIMIT_FAILURES)  # what the bot adds to a job; a listing may lack it
MAX_TRIES = 3
MAX_READS = 200
WARN_AT = (80, 95)  # percent of the limit at which a running job's thread is told


def carried(listed: Iterable[Job], stored: Mapping[str, Job]) -> list[Job]:
    """The listed jobs with the limit state their stored snapshot holds, where the listing lacks it."""
    out: list[Job] = []
    for job in listed:
        before = stored.get(job.id)
        kept = {k: before.extra[k] for k in KEPT if before is not None and k in before.extra and k not in job.extra}
        out.append(job.model_copy(update={"extra": {**job.extra, **kept}}) if kept else job)
    return out


def due(job: Job) -> bool:
    """Whether the job's limit should be read this cycle: live, not read yet, not given up on."""
    if job.status.terminal or job.extra.get(LIMIT_READ) or LIMIT_KEY in job.extra:
        return False
    failures = job.extra.get(LIMIT_FAILURES)
    return not (isinstance(failures, int) and failures >= MAX_TRIES)


def with_limits(source: LimitReading, jobs: Sequence[Job]) -> list[Job]:
    """`jobs` (limit state already carried over), with the limits of those due read from the provider."""
    todo = [j for j in jobs if due(j)][:MAX_READS]
    if not todo:
        return list(jobs)

    def read(job: Job) -> tuple[float | None]:  # a tuple, so "no limit" is not taken for a failed read
        return (source.runtime_limit(job),)

    answers = read_each(read, todo, deadline_s=source.deadline_s, what="limits")
    out: list[Job] = []
    for job in jobs:
        if job.id not in answers:
            out.append(job)
            continue
        extra = {k: v for k, v in job.extra.items() if k != LIMIT_FAILURES}
        answer = answers[job.id]
        if answer is None:
            failures = job.extra.get(LIMIT_FAILURES)
            extra[LIMIT_FAILURES] = (failures if isinstance(failures, int) else 0) + 1
        else:
            extra[LIMIT_READ] = True
            if answer[0] is not None:
                extra[LIMIT_KEY] = float(answer[0])
        out.append(job.model_copy(update={"extra": extra}))
    return out


def level(job: Job, now: datetime) -> int | None:
    """The highest warning threshold (percent, WARN_AT) a running job has passed by `now`, or None."""
    share = used(job, now) if job.status is JobStatus.RUNNING else None
    if share is None:
        return None
    passed = [p for p in WARN_AT if share * 100 >= p]
    return passed[-1] if passed else None


def limit_notes(live: Iterable[Job], now: datetime) -> list[tuple[Job, str, str]]:
    """The thread notes (job, note id, text) owed for running jobs that passed 80 % or 95 % of their
    limit: one per job and threshold (`limit_id`); bot/pipeline/owed.py's `thread_notes` sends each to
    the channels that have the job's thread."""
    return [
        (job, limit_id(job.queue, job.id, pct), limit_text(job, pct, limit_ends(job)))
        for job in live
        if (pct := level(job, now)) is not None
    ]
