"""Scheduled digests: `/jobs digest <queue> daily 09:00` (or `weekly mon 09:00`, `off`).

Each schedule owes its channel one message per period: counts by status and by failure cause,
the success rate, and, in its thread like a burst digest, the failures and the slowest jobs. The
content comes from the transition history (bot/store/tables.py TransitionRecord, the last status each
job reached in the period) and the snapshots (durations).

Exactly once per period: the worker (bot/worker.py `digests`, every minute, behind the lease)
writes the digest as outbox rows whose alert_id is the period, `sched:<queue>:<period end>`; the
outbox's unique (team, channel, alert_id) makes a second write of the same period, by a restart,
a clock that jumps back, or a standby that took over, insert nothing. Only the latest period that
has ended is owed: a worker down for several periods posts one digest, for the last of them. A
schedule posts nothing for periods that ended before it was made.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.blocks import render
from bot.core.alert_ids import schedule_digest_id
from bot.core.clock import WEEKDAYS
from bot.core.outbox import DigestPartPayload, DigestPayload, OutboxRow
from bot.core.schedules import DigestCadence
from bot.store import outbox, snapshots
from bot.store import schedules as stored
from bot.store.db import Database
from bot.store.lease import Fence
from bot.store.tables import DigestSchedule
from providers import JobStatus
from providers.causes import classify

log = logging.getLogger(__name__)

SLOWEST = 5
FAILED = frozenset({JobStatus.FAILED.value, JobStatus.TIMED_OUT.value})
SUCCEEDED = JobStatus.SUCCEEDED.value


def cause_of(provider: str, status: str, reason: str | None) -> str:
    """The failure cause a digest counts a failed job under: its reason classified by the rules of
    the queue's configured provider (providers/causes.py; a queue no longer configured: `unknown`,
    or `timeout` for a timed-out job)."""
    return classify(provider, JobStatus(status), reason)


def _wall(day: datetime, hhmm: str, tz: ZoneInfo) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day.date(), time(hour, minute), tzinfo=tz).astimezone(UTC)


def period(sched: DigestSchedule, now: datetime, default_tz: str) -> tuple[datetime, datetime]:
    """(start, end) in UTC of the latest period that has ended by `now`: end is the last scheduled
    time at or before now; start the scheduled time one day (or week) of wall clock before it."""
    tz = ZoneInfo(sched.tz or default_tz)
    local = now.astimezone(tz)
    step = 7 if sched.cadence == DigestCadence.WEEKLY else 1
    for back in range(8):
        day = local - timedelta(days=back)
        if sched.cadence == DigestCadence.WEEKLY and day.weekday() != sched.weekday:
            continue
        end = _wall(day, sched.at, tz)
        if end <= now:
            return _wall(day - timedelta(days=step), sched.at, tz), end
    raise AssertionError("a daily or weekly time always falls in the last 8 days")


def label(sched: DigestSchedule) -> str:
    """`daily 09:00 UTC` or `weekly mon 09:00 Europe/Paris` (the zone as stored, or empty)."""
    weekly = sched.cadence == DigestCadence.WEEKLY
    when = f"{DigestCadence.WEEKLY.value} {WEEKDAYS[sched.weekday or 0]}" if weekly else DigestCadence.DAILY.value
    return f"{when} {sched.at}" + (f" {sched.tz}" if sched.tz else "")


def _content(
    session: Session, queue: str, provider: str, start: datetime, end: datetime
) -> tuple[DigestPayload, list[list[str]]]:
    """The digest's body (no title yet) and its thread lines, from the period's transitions (`provider`: the
    queue's, whose rules classify the failures)."""
    changes = stored.transitions(session, queue, start, end)
    last = {t.job_id: t for t in changes}  # the last status each job reached in the period
    counts = Counter(t.new for t in last.values())
    failures = [t for t in last.values() if t.new in FAILED]
    causes = Counter(cause_of(provider, t.new, t.reason) for t in failures)
    finished = counts[SUCCEEDED] + len(failures)
    done = [job_id for job_id, t in last.items() if JobStatus(t.new).terminal]
    jobs = snapshots.jobs_of(session, queue, done)
    timed = sorted((j for j in jobs if j.duration_seconds), key=lambda j: -(j.duration_seconds or 0))[:SLOWEST]
    notes = (
        [f"Success rate: {round(100 * counts[SUCCEEDED] / finished)}% of {finished} finished jobs"] if finished else []
    )
    if causes:
        notes.append("Failures by cause: " + ", ".join(f"{n} {cause}" for cause, n in causes.most_common(10)))
    if not notes:
        notes.append("No job finished in this period.")
    if timed:
        notes.append("Slowest: " + ", ".join(f"{j.name} ({render.duration(j.duration_seconds)})" for j in timed))
    lines = [
        [
            t.name,
            queue,
            f"{t.new} ({cause_of(provider, t.new, t.reason)})" + (f": {t.reason[:80]}" if t.reason else ""),
            t.new,
        ]
        for t in failures
    ]
    lines += [[j.name, queue, f"took {render.duration(j.duration_seconds)}", j.status.value] for j in timed]
    return DigestPayload(dict(counts), [queue], notes=notes), lines


def enqueue_due(
    db: Database,
    now: datetime,
    *,
    default_tz: str,
    fence: Fence | None = None,
    providers: Mapping[str, str] | None = None,
) -> int:
    """Write the digest of every schedule whose latest period has ended and is not yet owed; one
    transaction per schedule; returns digests written. `providers`: queue -> its configured
    provider, for the failure causes (the transition history does not record it)."""
    with db.read() as session:
        every = stored.every(session)
    written = 0
    for sched in every:
        start, end = period(sched, now, default_tz)
        if end < sched.created_at:
            continue
        key = schedule_digest_id(sched.queue, end)
        with db.write() as session:
            if fence is not None:
                fence.check(session)
            if outbox.find_id(session, sched.team_id, sched.channel_id, key) is not None:
                continue
            provider = (providers or {}).get(sched.queue, "")
            body, lines = _content(session, sched.queue, provider, start, end)
            span = f"{start.astimezone(ZoneInfo(sched.tz or default_tz)):%a %Y-%m-%d %H:%M}"
            title = f"{sched.cadence.capitalize()} digest of {sched.queue} since {span}"
            digest = OutboxRow.digest(
                key,
                replace(body, title=title),
                team_id=sched.team_id,
                channel_id=sched.channel_id,
                queue=sched.queue,
                now=now,
            )
            if not outbox.insert(session, [digest]):
                continue  # another worker wrote this period first
            parent = outbox.find_id(session, sched.team_id, sched.channel_id, key)
            chunks = [lines[i : i + render.DIGEST_LINES] for i in range(0, len(lines), render.DIGEST_LINES)]
            outbox.insert(
                session,
                [
                    OutboxRow.digest_part(digest, n, DigestPartPayload(chunk, n, len(chunks)), parent_id=parent)
                    for n, chunk in enumerate(chunks, 1)
                ],
            )
            written += 1
            log.info("scheduled_digest channel=%s queue=%s period_end=%s", sched.channel_id, sched.queue, end)
    return written
