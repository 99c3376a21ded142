"""Duration against history: job families, percentiles, ETA, and the slow and stuck thresholds.

A job's *family* is its name with trailing run ids, dates and counters stripped (FAMILY_RULE), or
what a queue's `family = "<regex>"` captures. The `run_history` table keeps, per queue and family, the
last KEEP finished jobs (run time, wait before running, outcome, cause); rows are written with the
snapshot in commit_poll's transaction and are not touched by retention pruning, so the aggregates
outlive the snapshots. Everything here is a pure function.

The slow and stuck thresholds are one function each, `slow_after` and `stuck_after`: the flag
rule (bot/pipeline/usual.py) and anything that says a job is slow or stuck use them, so they
agree. A running job is slow past max(slow_factor x p90, p90 + slow_floor) of its family's
succeeded runs; a queued job is stuck past max(stuck_factor x the queue's p95 wait, stuck_floor).
The floors keep a degenerate spread (every recorded wait near zero) from calling a job stuck within
seconds (docs/architecture.md §What is usual).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from providers import Job, JobStatus

KEEP = 200  # finished jobs kept per (queue, family)
WAITS = 1_000  # the queue's newest waits behind its wait percentiles
MIN_RUNS = 5  # samples needed before any comparison, ETA or slow/stuck alert
STATS_DAYS = 30
SLOW_FACTOR = 1.5  # a running job is slow past SLOW_FACTOR x its family's p90 run time...
SLOW_FLOOR = 300.0  # ...and at least SLOW_FLOOR seconds past that p90
STUCK_FACTOR = 1.0  # a queued job is stuck past STUCK_FACTOR x the queue's p95 wait...
STUCK_FLOOR = 600.0  # ...and at least STUCK_FLOOR seconds after its creation
SEPARATORS = re.compile(r"[-_.:/ ()\[\]]+")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
FAMILY_RULE = (
    "lowercase the name, remove UUIDs wherever they are (Modzy names a job by its UUID and model), "
    "split it at - _ . : / ( ) [ ] and spaces, and drop trailing parts that contain a digit "
    "(run ids, dates, timestamps, counters, hashes); at least the first part stays"
)


def family_of(name: str, pattern: re.Pattern[str] | None = None) -> str:
    """The job family of `name`: `pattern`'s first group (or whole match) when it matches, else FAMILY_RULE.

    `nightly-train-2024-05-01-1234` -> `nightly-train`; `resnet50-ft-17` -> `resnet50-ft`;
    `0b6c1e2a-9d1f-4c6e-8f0a-3b2d1c4e5f60 (ocr)` -> `ocr`.
    """
    if pattern is not None:
        found = pattern.search(name)
        if found:
            return (found.group(1) if found.groups() else found.group(0)) or name
    parts = [p for p in SEPARATORS.split(UUID.sub(" ", name.lower())) if p]
    while len(parts) > 1 and any(ch.isdigit() for ch in parts[-1]):
        parts.pop()
    return "-".join(parts) or name.lower()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted `values`, interpolated linearly between ranks."""
    if not values:
        raise ValueError("percentile of no values")
    pos = (len(values) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


@dataclass(frozen=True)
class Usual:
    """What is usual for one family (run times of succeeded runs) and its queue (waits)."""

    runs: int = 0
    p10: float = 0.0
    p50: float = 0.0
    p90: float = 0.0
    waits: int = 0
    wait_p50: float = 0.0
    wait_p95: float = 0.0

    @property
    def enough(self) -> bool:
        """Enough succeeded runs to compare against."""
        return self.runs >= MIN_RUNS

    @property
    def enough_waits(self) -> bool:
        """Enough waits to compare against."""
        return self.waits >= MIN_RUNS


def usual(runs: Iterable[float], waits: Iterable[float]) -> Usual:
    """Percentiles of run times and waits (unsorted input)."""
    return usual_sorted(sorted(runs), sorted(waits))


def usual_sorted(r: Sequence[float], w: Sequence[float]) -> Usual:
    """Percentiles of run times and waits already sorted (a Window's `sorted`)."""
    out = Usual(runs=len(r), waits=len(w))
    if r:
        out = Usual(len(r), percentile(r, 10), percentile(r, 50), percentile(r, 90), len(w))
    if w:
        out = Usual(out.runs, out.p10, out.p50, out.p90, len(w), percentile(w, 50), percentile(w, 95))
    return out


class Window:
    """The newest `size` samples, also kept sorted, so a new sample costs a bisect and percentiles
    cost nothing: the worker keeps one per family and one for the queue's waits between cycles."""

    def __init__(self, size: int, values: Iterable[float] = ()) -> None:
        self.order: deque[float] = deque(maxlen=size)
        self.sorted: list[float] = []
        for value in values:
            self.add(value)

    def add(self, value: float) -> None:
        """Append the newest sample, dropping the oldest past `size`."""
        if len(self.order) == self.order.maxlen:
            del self.sorted[bisect_left(self.sorted, self.order[0])]
        self.order.append(value)
        insort(self.sorted, value)

    def __len__(self) -> int:
        return len(self.order)


def wait_seconds(job: Job, now: datetime | None = None) -> float | None:
    """Time from creation to start (or, for a job still queued, to `now`)."""
    if job.created_at is None:
        return None
    end = job.started_at or (now if job.status is JobStatus.QUEUED else None)
    return None if end is None else max(0.0, (end - job.created_at).total_seconds())


def running_seconds(job: Job, now: datetime) -> float | None:
    """How long a running job has run so far: from its start, or from its creation where the
    listing gives no start time (SageMaker's ListTrainingJobs summaries have none), as
    Job.duration_seconds counts."""
    start = job.started_at or job.created_at
    if job.status is not JobStatus.RUNNING or start is None:
        return None
    return max(0.0, (now - start).total_seconds())


def eta(job: Job, u: Usual) -> datetime | None:
    """When a running job usually ends (start, or creation, + p50), once there is enough history."""
    start = job.started_at or job.created_at
    if job.status is not JobStatus.RUNNING or start is None or not u.enough:
        return None
    return start + timedelta(seconds=u.p50)


def outside_usual(seconds: float, u: Usual) -> float | None:
    """The ratio to p50 when a finished run took less than p10 or more than p90; else None."""
    if not u.enough or u.p50 <= 0 or u.p10 <= seconds <= u.p90:
        return None
    return seconds / u.p50


@dataclass(frozen=True)
class Limits:
    """A queue's slow and stuck settings (its `[[queues]]` keys of the same names; seconds for floors)."""

    slow_factor: float = SLOW_FACTOR
    slow_floor: float = SLOW_FLOOR
    stuck_factor: float = STUCK_FACTOR
    stuck_floor: float = STUCK_FLOOR


@dataclass(frozen=True)
class Threshold:
    """How long a job of a family may run (slow) or a queued job may wait (stuck) before it is
    flagged: `seconds`, and whether the floor (not the factor x percentile) set it."""

    seconds: float
    floored: bool


def slow_after(u: Usual, limits: Limits) -> Threshold | None:
    """The slow threshold of a family: max(slow_factor x p90, p90 + slow_floor) of its succeeded
    runs; None without MIN_RUNS of them."""
    if not u.enough:
        return None
    by_factor, by_floor = limits.slow_factor * u.p90, u.p90 + limits.slow_floor
    return Threshold(max(by_factor, by_floor), by_floor > by_factor)


def stuck_after(u: Usual, limits: Limits) -> Threshold | None:
    """The stuck threshold of a queue: max(stuck_factor x its p95 wait, stuck_floor); None
    without MIN_RUNS waits."""
    if not u.enough_waits:
        return None
    by_factor = limits.stuck_factor * u.wait_p95
    return Threshold(max(by_factor, limits.stuck_floor), limits.stuck_floor > by_factor)


def slow_since(job: Job, after: Threshold) -> datetime | None:
    """When a running job passes (or passed) `after`: its start, or its creation where the listing
    gives no start (as running_seconds counts), plus the threshold; None for any other job."""
    start = job.started_at or job.created_at
    if job.status is not JobStatus.RUNNING or start is None:
        return None
    return start + timedelta(seconds=after.seconds)


def stuck_since(job: Job, after: Threshold) -> datetime | None:
    """When a queued job passes (or passed) `after`: its creation plus the threshold; None for any other job."""
    if job.status is not JobStatus.QUEUED or job.created_at is None:
        return None
    return job.created_at + timedelta(seconds=after.seconds)


def slow_for(job: Job, u: Usual, now: datetime, limits: Limits = Limits()) -> float | None:
    """Seconds run once a running job is past `slow_after` (it is slow); None otherwise or without history."""
    after = slow_after(u, limits)
    crossed = slow_since(job, after) if after is not None else None
    if crossed is None or crossed >= now:
        return None
    return running_seconds(job, now)


def stuck_for(job: Job, u: Usual, now: datetime, limits: Limits = Limits()) -> float | None:
    """Seconds queued once a queued job is past `stuck_after` (it is stuck); None otherwise or without history."""
    after = stuck_after(u, limits)
    crossed = stuck_since(job, after) if after is not None else None
    if crossed is None or crossed >= now:
        return None
    return wait_seconds(job, now)


def slow_words(ran: float, after: Threshold, u: Usual, limits: Limits) -> str:
    """`running 2 h 10, past its threshold of 1 h 35 (1.5 × p90 1 h 03)`, or with the floor
    `(p90 10 min + floor 5 min)`."""
    why = (
        f"p90 {short(u.p90)} + floor {short(limits.slow_floor)}"
        if after.floored
        else f"{limits.slow_factor:g} × p90 {short(u.p90)}"
    )
    return f"running {short(ran)}, past its threshold of {short(after.seconds)} ({why})"


def stuck_words(waited: float, after: Threshold, u: Usual, limits: Limits) -> str:
    """`queued 26 min, past its threshold of 10 min (usually under 40 s; floor 10 min)`, or
    without the floor `(usually under 1 h 30)` (`1.5 × p95 wait 1 h` with another factor)."""
    usually = (
        f"usually under {short(u.wait_p95)}"
        if limits.stuck_factor == 1
        else f"{limits.stuck_factor:g} × p95 wait {short(u.wait_p95)}"
    )
    why = f"usually under {short(u.wait_p95)}; floor {short(limits.stuck_floor)}" if after.floored else usually
    return f"queued {short(waited)}, past its threshold of {short(after.seconds)} ({why})"


def short(seconds: float) -> str:
    """`42 min`, `1 h 10`, `3 d 4 h`, `40 s`."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d}"
    return f"{s // 86400} d {s % 86400 // 3600} h"


# -- the store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """`/jobs stats` for one family (or `*`, the whole queue) over STATS_DAYS."""

    family: str
    count: int
    succeeded: int
    run_p50: float | None
    run_p90: float | None
    wait_p50: float | None
    wait_p90: float | None

    @property
    def success_rate(self) -> float:
        """Succeeded / finished, 0..1."""
        return self.succeeded / self.count if self.count else 0.0


def summarize(family: str, rows: Sequence[tuple[str, float | None, float | None]]) -> Summary:
    """Rows of (status, run_seconds, wait_seconds) as a Summary; pure."""
    runs = sorted(r for _, r, _ in rows if r is not None)
    waits = sorted(w for _, _, w in rows if w is not None)
    return Summary(
        family=family,
        count=len(rows),
        succeeded=sum(1 for s, _, _ in rows if s == JobStatus.SUCCEEDED.value),
        run_p50=percentile(runs, 50) if runs else None,
        run_p90=percentile(runs, 90) if runs else None,
        wait_p50=percentile(waits, 50) if waits else None,
        wait_p90=percentile(waits, 90) if waits else None,
    )


def with_usual(job: Job, u: Usual) -> Job:
    """`job` carrying its family's usual run times (for the card) once there is enough history."""
    if not u.enough:
        return job
    extra = {**job.extra, "usual_runs": u.runs, "usual_p10": u.p10, "usual_p50": u.p50, "usual_p90": u.p90}
    return job.model_copy(update={"extra": extra})


# --- failure streaks and recoveries, per family ---------------------------------------------------
# A family's streak is its failed and timed-out runs in a row, in the order they ended (run_history,
# which outlives the snapshots' retention). A stopped run is a person's act, neither failure nor
# success: it leaves the streak as it is. The first success after RECOVERY_MIN failures or more is
# a recovery, told even to a subscription that filters to failures (unless it opted out).
FAILING = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})
RECOVERY_MIN = 2
STREAK_KEY = "streak"  # on a failure's card: its place in the streak (1 for the first)
STREAK_SINCE_KEY = "streak_since"  # ISO time the streak's first failure ended
RECOVERED_KEY = "recovered_after"  # on a success's card: the failures in a row it ended
FAMILY_KEY = "family"  # the family the streak is counted in
STREAK_KEYS = frozenset({STREAK_KEY, STREAK_SINCE_KEY, RECOVERED_KEY, FAMILY_KEY})


@dataclass(frozen=True)
class Streak:
    """A family's failures in a row (0: its last finished run did not fail) and when the first ended."""

    failures: int = 0
    since: datetime | None = None
    ids: frozenset[str] = frozenset()  # the failed runs counted, so a run stored twice counts once

    def then(self, job_id: str, status: str, ended: datetime | None) -> Streak:
        """The streak after run `job_id` of the family ended with `status` (canonical text) at `ended`."""
        if job_id in self.ids:
            return self
        if status in {s.value for s in FAILING}:
            return Streak(self.failures + 1, self.since if self.failures else ended, self.ids | {job_id})
        if status == JobStatus.SUCCEEDED.value:
            return Streak()
        return self  # stopped: a person's act, not the job's outcome


def with_streak(job: Job, family: str, before: Streak, after: Streak) -> Job:
    """`job` (one that just finished) carrying what its family's streak says on its card: a failure
    its place in the streak, a success the failures it ended (only RECOVERY_MIN or more)."""
    if job.status in FAILING and after.failures:
        since = after.since.isoformat() if after.since else ""
        extra = {**job.extra, STREAK_KEY: after.failures, STREAK_SINCE_KEY: since, FAMILY_KEY: family}
        return job.model_copy(update={"extra": extra})
    if job.status is JobStatus.SUCCEEDED and before.failures >= RECOVERY_MIN:
        extra = {**job.extra, RECOVERED_KEY: before.failures, FAMILY_KEY: family}
        return job.model_copy(update={"extra": extra})
    return job


def streak_words(job: Job) -> str:
    """`3rd failure in a row of nightly-eval` (the time it began is the caller's to show), or
    `nightly-eval recovered after 3 failures`; empty for a first failure or an ordinary run."""
    family = str(job.extra.get(FAMILY_KEY) or job.name)
    n = job.extra.get(STREAK_KEY)
    if job.status in FAILING and isinstance(n, int) and n >= RECOVERY_MIN:
        return f"{ordinal(n)} failure in a row of {family}"
    if (m := recovered_after(job)) >= RECOVERY_MIN:
        return f"{family} recovered after {m} failures"
    return ""


def streak_since(job: Job) -> datetime | None:
    """When the failure streak `job` belongs to began (its first failure ended), if known."""
    found = job.extra.get(STREAK_SINCE_KEY)
    try:
        return datetime.fromisoformat(found) if isinstance(found, str) and found else None
    except ValueError:
        return None


def recovered_after(job: Job) -> int:
    """The failures in a row that `job`, a success, ended (0: not a recovery)."""
    found = job.extra.get(RECOVERED_KEY)
    return found if isinstance(found, int) and job.status is JobStatus.SUCCEEDED else 0


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
