"""Inside commit_poll's transaction: record finished jobs in run_history, put what is usual on the
alerts' payloads, and raise the slow and stuck flags (bot/core/history.py has the arithmetic).

A job is flagged when it crosses its threshold, not when it is first seen past it: only when the
moment it crossed (start + the slow threshold, creation + the stuck threshold) lies after the
queue's watermark before this poll (the listing start of the previous successful poll) and before
now. A baseline has no watermark before it and flags nothing; jobs already past their
threshold when jobwatch starts, when they are first listed or when their history first becomes
enough are never announced; a restart does not announce again what crossed before the watermark;
a job that crossed while polls failed is announced by the next successful poll, the watermark
having stayed where it was (docs/architecture.md §What is usual).

A flag is an outbox row of kind `flag` (new_status `slow` or `stuck`) whose alert_id is
`slow:<queue>:<job id>` or `stuck:<queue>:<job id>`: the outbox's unique (team, channel,
alert_id) makes it once per job, kind and channel, across restarts and re-polls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.core import history
from bot.core.alert_ids import flag_id
from bot.core.history import with_usual
from bot.core.subscriptions import FlagKind
from bot.pipeline.diff import DiffResult, Transition
from bot.store import history as run_history
from providers import Job, JobStatus

NAMES = 20_000  # job name -> family entries kept between cycles (cleared past it): the live and changed jobs
FLAGGED = 100_000  # flag alert ids this process already enqueued (cleared past it)


class Normal:
    """One queue's history settings and what is usual for it, kept in the worker between cycles.

    The worker is the only writer of run_history while it holds the lease, so after one load (at
    start-up, or when the fence token changes) it keeps the usual run times of every family with at
    least MIN_RUNS succeeded runs, and the queue's newest WAITS waits, as `history.Window`s that each
    new history row updates in place: a cycle reads no history and sorts nothing. A job's family is
    computed once per job name (not at the baseline, whose names are not worth keeping). After a
    failed commit the worker drops this object (its windows may hold rows that were rolled back).
    """

    def __init__(self, queue: str, pattern: re.Pattern[str] | None = None, limits: history.Limits | None = None):
        self.queue = queue
        self.pattern = pattern
        self.limits = limits or history.Limits()  # the queue's slow and stuck settings
        self.token: int | None = None  # the lease fence token the windows were loaded under
        self.names: dict[str, str] = {}
        self.runs: dict[str, history.Window] = {}  # only families with >= MIN_RUNS succeeded runs
        self.waits = history.Window(history.WAITS)
        self.usuals: dict[str, history.Usual] = {}
        self.flagged: set[str] = set()
        self.streaks: dict[str, history.Streak] = {}  # family -> its failures in a row
        self.loaded = False

    def family(self, job: Job) -> str:
        """The job's family under this queue's rule (computed once per name)."""
        found = self.names.get(job.name)
        if found is None:
            if len(self.names) >= NAMES:
                self.names.clear()
            found = self.names[job.name] = history.family_of(job.name, self.pattern)
        return found

    def family_of(self, job: Job) -> str:
        """The job's family, without caching it."""
        return self.names.get(job.name) or history.family_of(job.name, self.pattern)

    def usual(self, family: str) -> history.Usual:
        """What is usual for `family` (and the queue's waits); Usual() without enough history."""
        found = self.usuals.get(family)
        if found is None:
            runs = self.runs.get(family)
            found = self.usuals[family] = history.usual_sorted(runs.sorted if runs else (), self.waits.sorted)
        return found

    def load(self, session: Session, token: int | None) -> None:
        """(Re)read the windows from run_history, unless already loaded under this fence token."""
        if self.loaded and token == self.token:
            return
        self.runs, self.usuals, self.flagged = {}, {}, set()
        self.waits = history.Window(history.WAITS, reversed(run_history.newest_waits(session, self.queue)))
        for family, runs in run_history.family_runs(session, self.queue, None).items():
            if len(runs) >= history.MIN_RUNS:
                self.runs[family] = history.Window(history.KEEP, runs)
        self.streaks = {}
        for family, job_id, status, ended in run_history.outcomes(session, self.queue):
            self.streaks[family] = self.streaks.get(family, history.Streak()).then(job_id, status, ended)
        self.token, self.loaded = token, True

    def recorded(
        self, session: Session, rows: Sequence[dict[str, object]]
    ) -> dict[str, tuple[history.Streak, history.Streak]]:
        """Fold rows just written to run_history into the windows and the families' streaks; returns,
        per job id, its family's streak before and after the job ended."""
        fresh: set[str] = set()
        moved: dict[str, tuple[history.Streak, history.Streak]] = {}
        for row in sorted(rows, key=lambda r: str(r["ended_at"] or "")):
            family, run, wait = str(row["family"]), row["run_seconds"], row["wait_seconds"]
            before = self.streaks.get(family, history.Streak())
            ended = row["ended_at"] if isinstance(row["ended_at"], datetime) else None
            after = self.streaks[family] = before.then(str(row["job_id"]), str(row["status"]), ended)
            moved[str(row["job_id"])] = (before, after)
            if isinstance(wait, float):
                self.waits.add(wait)
                self.usuals.clear()
            if isinstance(run, float):
                if family in self.runs:
                    self.runs[family].add(run)
                    self.usuals.pop(family, None)
                else:
                    fresh.add(family)
        if fresh:  # families that may just have reached MIN_RUNS: one query for all of them
            for family, runs in run_history.family_runs(session, self.queue, fresh).items():
                if len(runs) >= history.MIN_RUNS:
                    self.runs[family] = history.Window(history.KEEP, runs)
                    self.usuals.pop(family, None)
        return moved


@dataclass(frozen=True)
class Flag:
    """One slow or stuck job, with the words that say so."""

    kind: FlagKind
    job: Job
    text: str

    @property
    def alert_id(self) -> str:
        """Once per job and kind."""
        return flag_id(self.kind, self.job.queue, self.job.id)


def flags(jobs: Iterable[Job], normal: Normal, now: datetime, since: datetime | None) -> list[Flag]:
    """Running jobs that became slow and queued ones that became stuck after `since` (the queue's
    watermark before this poll; None, as at a baseline: no flags), before `now`, among `jobs`, but
    for those `normal` already flagged. Only jobs whose family (for slow) or queue (for stuck) has
    enough history are looked at, and the thresholds are worked out once per family and cycle: a
    job crossed in (since, now) when its start (or creation) lies in (since - threshold, now -
    threshold)."""
    out: list[Flag] = []
    if since is None:
        return out
    limits, done = normal.limits, normal.flagged
    waits = normal.usual("")  # the queue's waits only
    stuck = history.stuck_after(waits, limits)
    if not normal.runs and stuck is None:
        return out
    slow: dict[str, tuple[history.Usual, history.Threshold]] = {}
    for job in jobs:
        if job.status is JobStatus.RUNNING and normal.runs:
            if f"slow:{job.queue}:{job.id}" in done:
                continue
            family = normal.family(job)
            if family not in normal.runs:
                continue
            found = slow.get(family)
            if found is None:
                u = normal.usual(family)
                after = history.slow_after(u, limits)
                if after is None:
                    continue
                found = slow[family] = (u, after)
            u, after = found
            crossed = history.slow_since(job, after)
            if crossed is not None and since < crossed < now:
                ran = history.running_seconds(job, now) or 0.0
                out.append(Flag(FlagKind.SLOW, job, history.slow_words(ran, after, u, limits)))
        elif job.status is JobStatus.QUEUED and stuck is not None:
            if f"stuck:{job.queue}:{job.id}" in done:
                continue
            crossed = history.stuck_since(job, stuck)
            if crossed is not None and since < crossed < now:
                waited = history.wait_seconds(job, now) or 0.0
                out.append(Flag(FlagKind.STUCK, job, history.stuck_words(waited, stuck, waits, limits)))
    return out


def apply(
    session: Session,
    *,
    result: DiffResult,
    normal: Normal,
    live: Iterable[Job],
    now: datetime,
    since: datetime | None,
    baseline: bool = False,
    token: int | None = None,
) -> tuple[list[Transition], list[Flag]]:
    """Record the cycle's finished jobs; return the transitions with what is usual, and the flags
    of the jobs among `live` that crossed their threshold after `since` (the queue's watermark
    before this poll) (each once per process; the outbox key makes it once across restarts)."""
    normal.load(session, token)
    if baseline:  # the whole history is listed once: its names are not worth keeping in memory
        rows = run_history.baseline_rows((j, normal.family_of(j)) for j in result.upserts)
    else:
        rows = [r for j in result.upserts if (r := run_history.history_row(j, normal.family(j))) is not None]
    run_history.record(session, rows)
    streaks = normal.recorded(session, rows)
    transitions = [
        Transition(_with_streak(with_usual(t.job, normal.usual(normal.family(t.job))), normal, streaks), t.old)
        for t in result.transitions
    ]
    if baseline:  # jobs already running or waiting when jobwatch starts are not news
        return transitions, []
    found = flags(live, normal, now, since)
    if len(normal.flagged) >= FLAGGED:
        normal.flagged.clear()
    normal.flagged.update(f.alert_id for f in found)
    return transitions, found


def _with_streak(job: Job, normal: Normal, streaks: Mapping[str, tuple[history.Streak, history.Streak]]) -> Job:
    """`job` with its family's streak on its card (bot/core/history.py `with_streak`), if it just ended."""
    found = streaks.get(job.id)
    if found is None or not job.status.terminal:
        return job
    return history.with_streak(job, normal.family(job), *found)
