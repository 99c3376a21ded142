"""Inside commit_poll's transaction: record finished jobs in run_history, put what is usual on the
alerts' payloads, and raise the slow and stuck flags (bot/history.py has the arithmetic).

A flag is an outbox row of kind `flag` (new_status `slow` or `stuck`) whose alert_id is
`slow:<queue>:<job id>` or `stuck:<queue>:<job id>`: the outbox's unique (team, channel,
alert_id) makes it once per job, kind and channel, across restarts and re-polls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from sqlmodel import Session

from bot import history
from bot.pipeline.diff import DiffResult, Transition
from bot.tables import Subscription
from providers import Job

FLAGS = ("slow", "stuck")


@dataclass(frozen=True)
class Normal:
    """The queue's history settings and this cycle's live jobs (the ones to check)."""

    pattern: re.Pattern[str] | None = None
    slow_factor: float = history.SLOW_FACTOR
    live: Sequence[Job] = field(default_factory=tuple)

    def family(self, job: Job) -> str:
        """The job's family under this queue's rule."""
        return history.family_of(job.name, self.pattern)


@dataclass(frozen=True)
class Flag:
    """One slow or stuck job, with the words that say so."""

    kind: str
    job: Job
    text: str

    @property
    def alert_id(self) -> str:
        """Once per job and kind."""
        return f"{self.kind}:{self.job.queue}:{self.job.id}"


def with_usual(job: Job, u: history.Usual) -> Job:
    """`job` carrying its family's usual run times (for the card) once there is enough history."""
    if not u.enough:
        return job
    extra = {**job.extra, "usual_runs": u.runs, "usual_p10": u.p10, "usual_p50": u.p50, "usual_p90": u.p90}
    return job.model_copy(update={"extra": extra})


def flags(jobs: Iterable[Job], usual: dict[str, history.Usual], normal: Normal, now: datetime) -> list[Flag]:
    """Slow running jobs and stuck queued ones among `jobs`; pure."""
    out: list[Flag] = []
    for job in jobs:
        u = usual.get(normal.family(job))
        if u is None:
            continue
        ratio = history.slow_ratio(job, u, now, normal.slow_factor)
        if ratio is not None:
            text = f"running {ratio:.1f}× longer than usual (p90 {history.short(u.p90)})"
            out.append(Flag("slow", job, text))
        waited = history.stuck_for(job, u, now)
        if waited is not None:
            text = f"queued {history.short(waited)}, usually under {history.short(u.wait_p95)}"
            out.append(Flag("stuck", job, text))
    return out


def apply(
    session: Session, *, queue: str, result: DiffResult, normal: Normal, now: datetime
) -> tuple[list[Transition], list[Flag]]:
    """Record the cycle's finished jobs; return the transitions with what is usual, and the flags."""
    checked = [j for j in normal.live if j.status.value in ("running", "queued")]
    families = {normal.family(t.job) for t in result.transitions} | {normal.family(j) for j in checked}
    usual = history.load(session, queue, families) if families else {}
    rows = [r for j in result.upserts if (r := history.history_row(j, normal.family(j))) is not None]
    history.record(session, rows)
    transitions = [Transition(with_usual(t.job, usual[normal.family(t.job)]), t.old) for t in result.transitions]
    return transitions, flags(checked, usual, normal, now)


def flag_wanted(sub: Subscription, flag: Flag) -> bool:
    """A subscription with no status filter gets every flag; with one, only the kinds it names."""
    kinds = {s for s in sub.statuses.split(",") if s}
    if kinds and flag.kind not in kinds:
        return False
    return not sub.match or fnmatchcase(flag.job.name.lower(), sub.match.lower())


def flag_rows(subs: Iterable[Subscription], found: Iterable[Flag], now: datetime) -> list[dict[str, object]]:
    """One pending outbox row per (flag x subscribed channel that wants it)."""
    active = [s for s in subs if s.paused_reason is None]
    rows: list[dict[str, object]] = []
    for flag in found:
        payload = flag.job.model_copy(update={"extra": {**flag.job.extra, "flag": flag.kind, "flag_text": flag.text}})
        for sub in active:
            if flag_wanted(sub, flag):
                rows.append(
                    {
                        "alert_id": flag.alert_id,
                        "kind": "flag",
                        "team_id": sub.team_id,
                        "channel_id": sub.channel_id,
                        "queue": flag.job.queue,
                        "job_id": flag.job.id,
                        "old_status": flag.job.status.value,
                        "new_status": flag.kind,
                        "payload": payload.model_dump_json(),
                        "state": "pending",
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
    return rows
