"""Owners from tags (`owner_from = "tag:<key>"`): read each job's tags once, keep the owner with the job.

SageMaker and AWS Batch list jobs without their tags; reading them costs one request per job
(providers.base.Taggable). So, for a queue whose `owner_from` reads a tag, and for no other:

- A job's tags are read **once**: after a read, the job carries `extra["tags_read"] = True` and the
  owner (`extra["owner"]`, when the tag is set); both are stored with its snapshot, and carried onto
  the job each time the listing shows it again (the listing lacks them), so the job fingerprints the
  same and a restart reads nothing again.
- Only jobs that need it: a job first seen after the queue's baseline, and a job still live (at the
  baseline too, or when the queue has just been given `owner_from`). A job already ended when the
  baseline lists it will never alert and is not read.
- A read that fails leaves the job without an owner this cycle; its alert goes out in this cycle as
  it would anyway (the reads take at most the adapter's deadline), never held back nor dropped. The
  job counts the failure (`extra["tag_failures"]`) and is
  read again on the next cycles while it is live or listed again, MAX_TAG_TRIES times in all; then
  it stays without an owner (logged). Throttling stops this cycle's reads; the rest wait.
- At most MAX_TAG_READS reads per cycle, TAG_WORKERS at a time, within the adapter's deadline;
  ended jobs first (their alert is this cycle's), then new ones. Those left over are read on a
  later cycle while they are live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import TypeVar

from bot.core.owners import OWNER_KEY, clipped
from bot.core.snapshot import Prior
from providers import Job, ProviderError, Taggable, ThrottledError

log = logging.getLogger(__name__)
T = TypeVar("T")

TAGS_READ = "tags_read"
TAG_FAILURES = "tag_failures"
KEPT = (OWNER_KEY, TAGS_READ, TAG_FAILURES)  # what the bot adds to a job; the listing never has it
MAX_TAG_TRIES = 3  # failed reads of one job before it is left without an owner
MAX_TAG_READS = 200  # reads per cycle of one queue
TAG_WORKERS = 8  # reads at once


def carried(listed: Iterable[Job], stored: Mapping[str, Job]) -> list[Job]:
    """The listed jobs with the tag state their stored snapshot holds (an owner, `tags_read`, failures)."""
    out: list[Job] = []
    for job in listed:
        before = stored.get(job.id)
        kept = {k: before.extra[k] for k in KEPT if before is not None and k in before.extra}
        if kept and any(job.extra.get(k) != v for k, v in kept.items()):
            job = job.model_copy(update={"extra": {**job.extra, **kept}})
        out.append(job)
    return out


def due(job: Job, prior: Prior | None, *, baseline: bool) -> bool:
    """Whether the job's tags should be read this cycle (see the module's docstring)."""
    if job.extra.get(TAGS_READ):
        return False
    failures = _failures(job)
    if failures >= MAX_TAG_TRIES:
        return False
    if not job.status.terminal:
        return True
    return not baseline and (prior is None or failures > 0)


def _failures(job: Job) -> int:
    value = job.extra.get(TAG_FAILURES)
    return value if isinstance(value, int) else 0


def read_tags(source: Taggable, jobs: Sequence[Job]) -> dict[str, dict[str, str] | None]:
    """Job id -> its tags, or None when the read failed; a job not read (the deadline passed, or
    the provider throttled) is absent. Never raises."""
    return read_each(source.job_tags, jobs, deadline_s=source.deadline_s, what="tags")


def read_each(read: Callable[[Job], T], jobs: Sequence[Job], *, deadline_s: float, what: str) -> dict[str, T | None]:
    """Job id -> what `read` answered for it (one provider request per job, TAG_WORKERS at a time,
    all within `deadline_s`), or None when the read failed; a job not read (the deadline passed, or
    the provider throttled) is absent. Never raises. `what` names the reads in the log."""
    if not jobs:
        return {}
    answers: dict[str, T | None] = {}
    pool = ThreadPoolExecutor(max_workers=min(TAG_WORKERS, len(jobs)), thread_name_prefix=what)
    futures: dict[Future[T], Job] = {pool.submit(read, job): job for job in jobs}
    try:
        for future in as_completed(futures, timeout=deadline_s):
            job = futures[future]
            try:
                answers[job.id] = future.result()
            except ThrottledError as err:
                answers[job.id] = None
                log.warning("%s_throttled queue=%s job_id=%s error=%s", what, job.queue, job.id, err)
                break  # the provider asks us to slow down: the rest wait for a later cycle
            except ProviderError as err:
                answers[job.id] = None
                log.info("%s_failed queue=%s job_id=%s error=%s", what, job.queue, job.id, err)
            except Exception:  # an adapter bug must cost this job the detail, not the queue its alerts
                answers[job.id] = None
                log.exception("%s_crashed queue=%s job_id=%s", what, job.queue, job.id)
    except TimeoutError:
        log.warning("%s_deadline queue=%s read=%d of=%d", what, jobs[0].queue, len(answers), len(jobs))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return answers


def with_tag_owners(
    source: Taggable,
    key: str,
    jobs: Sequence[Job],
    known: Mapping[str, Prior],
    *,
    baseline: bool,
) -> list[Job]:
    """`jobs` (tag state already carried over), with the owners of those due read from their tags."""
    wanted = [j for j in jobs if due(j, known.get(j.id), baseline=baseline)]
    if not wanted:
        return list(jobs)
    wanted.sort(key=lambda j: (not j.status.terminal, j.id in known))  # ended first, then new
    answers = read_tags(source, wanted[:MAX_TAG_READS])
    out: list[Job] = []
    for job in jobs:
        if job.id not in answers:
            out.append(job)
            continue
        tags = answers[job.id]
        extra = {k: v for k, v in job.extra.items() if k != TAG_FAILURES}
        if tags is None:
            failures = _failures(job) + 1
            extra[TAG_FAILURES] = failures
            if failures >= MAX_TAG_TRIES:
                log.warning("tags_given_up queue=%s job_id=%s tries=%d", job.queue, job.id, failures)
        else:
            extra[TAGS_READ] = True
            extra.pop(OWNER_KEY, None)  # the tag decides, even over an owner kept from an earlier setting
            owner = clipped(tags.get(key))
            if owner is not None:
                extra[OWNER_KEY] = owner
        out.append(job.model_copy(update={"extra": extra}))
    return out
