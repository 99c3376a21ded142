"""Quiet hours that defer: a subscription's window (`/jobs subscribe ml --quiet 20:00-08:00`, or
`quiet = "20:00-08:00"` in a [[subscriptions]] entry) holds its alerts instead of posting them.

While the window runs, the poll's transaction (bot/pipeline/enqueue.py `commit_poll`) writes the
channel's alerts as `held` with the window's end in `next_attempt_at`; failed and timed_out alerts
still go out at once unless the subscription says `quiet_all`. When the window ends, `release`
(called by the worker each delivery round, behind the lease) folds each channel's held rows, in
one transaction, into one "While you were away" digest: a parent with counts by status and
thread replies listing the jobs, outbox rows like any other, so they are posted exactly once and
survive restarts. The held rows become `digested` (parent_id: the digest); once the digest is
posted, delivery brings each held job's card (its thread parent) up to date
(bot/pipeline/deliver.py `_update_cards`).

Window times are wall-clock times in the subscription's `quiet_tz`, or `[bot] timezone`; a window
whose start is after its end crosses midnight. Across a daylight-saving change the window keeps
its wall-clock times (zoneinfo): a time that falls in the skipped hour moves forward by the hour
skipped (02:30 becomes 03:30; PEP 495's fold=0 rule), and a time in the repeated hour is its first
occurrence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from bot.pipeline.digest import fold as fold_digest
from bot.store.db import Database
from bot.store.tables import OutboxItem, Subscription
from providers import Job, JobStatus

if TYPE_CHECKING:
    from bot.pipeline.enqueue import Fence

log = logging.getLogger(__name__)

WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
WINDOW_PATTERN = WINDOW_RE.pattern
PASS_THROUGH = frozenset({JobStatus.FAILED.value, JobStatus.TIMED_OUT.value})
AWAY_TITLE = "While you were away"


def parse_window(text: str) -> tuple[str, str]:
    """`20:00-08:00` as ("20:00", "08:00"); ValueError naming the problem otherwise."""
    found = WINDOW_RE.match(text.strip())
    if found is None:
        raise ValueError(f"quiet hours are HH:MM-HH:MM in 24-hour time, such as 20:00-08:00 (got {text!r})")
    start, end = text.strip().split("-")
    if start == end:
        raise ValueError(f"quiet hours {text!r} start and end at the same time")
    return start, end


def check_zone(name: str) -> str:
    """An IANA time zone name, or ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from None
    return name


def _at(day: datetime, hhmm: str, tz: ZoneInfo) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day.date(), time(hour, minute), tzinfo=tz).astimezone(UTC)


def window_end(now: datetime, start: str, end: str, tz: ZoneInfo) -> datetime | None:
    """The end (UTC) of the quiet window `start`-`end` (wall-clock in `tz`) that contains `now`,
    or None when `now` is outside every window. Instants are compared in UTC, never as wall times."""
    local = now.astimezone(tz)
    crosses = start > end
    for back in (1, 0):
        day = local - timedelta(days=back)
        opens = _at(day, start, tz)
        closes = _at(day + timedelta(days=1) if crosses else day, end, tz)
        if opens <= now.astimezone(UTC) < closes:
            return closes
    return None


def sub_window_end(sub: Subscription, now: datetime, default_tz: str) -> datetime | None:
    """Where this subscription's quiet window (if any, and if now inside it) ends."""
    if not sub.quiet_start or not sub.quiet_end:
        return None
    return window_end(now, sub.quiet_start, sub.quiet_end, ZoneInfo(sub.quiet_tz or default_tz))


def label(sub: Subscription) -> str:
    """`quiet 20:00-08:00 Europe/Paris, failures too` (empty without quiet hours)."""
    if not sub.quiet_start:
        return ""
    text = f"quiet {sub.quiet_start}-{sub.quiet_end}" + (f" {sub.quiet_tz}" if sub.quiet_tz else "")
    return text + (", failures held too" if sub.quiet_all else "")


def hold_quiet(rows: list[dict[str, object]], subs: Iterable[Subscription], *, now: datetime, default_tz: str) -> int:
    """Mark the pending alerts of channels in their quiet window `held` until it ends; returns how many."""
    ends: dict[tuple[str, str, str], tuple[datetime, bool]] = {}
    for sub in subs:
        closes = sub_window_end(sub, now, default_tz)
        if closes is not None:
            ends[(sub.team_id, sub.channel_id, sub.queue)] = (closes, sub.quiet_all)
    held = 0
    for row in rows:
        found = ends.get((str(row["team_id"]), str(row["channel_id"]), str(row["queue"])))
        if found is None or row.get("state") != "pending" or row.get("kind") != "alert":
            continue
        closes, everything = found
        if row.get("new_status") in PASS_THROUGH and not everything:
            continue
        row["state"] = "held"
        row["next_attempt_at"] = closes
        held += 1
    return held


def _digest_rows(session: Session, rows: Sequence[OutboxItem], *, team: str, channel: str, now: datetime) -> OutboxItem:
    """The away digest of `rows` (parent and thread replies), added to the session; rows digested.
    Each job counts and is listed once, with the last status it reached in the window."""
    latest = {(r.queue, r.job_id): r for r in rows}
    jobs = [Job.model_validate_json(r.payload) for r in latest.values()]
    folded, _ = fold_digest(session, rows, jobs, prefix="away", team=team, channel=channel, now=now, title=AWAY_TITLE)
    return folded


def release(db: Database, now: datetime, fence: Fence | None = None) -> int:
    """Fold every channel's held alerts whose window has ended into one away digest per channel,
    one transaction per channel; returns the channels released."""
    with db.read() as session:
        due = session.exec(
            select(OutboxItem.team_id, OutboxItem.channel_id)
            .where(OutboxItem.state == "held", col(OutboxItem.next_attempt_at) <= now)
            .distinct()
        ).all()
    for team, channel in due:
        with db.write() as session:
            if fence is not None:
                fence.check(session)
            rows = session.exec(
                select(OutboxItem)
                .where(
                    OutboxItem.team_id == team,
                    OutboxItem.channel_id == channel,
                    OutboxItem.state == "held",
                    col(OutboxItem.next_attempt_at) <= now,
                )
                .order_by(col(OutboxItem.id))
            ).all()
            if not rows:
                continue  # another round released them first
            _digest_rows(session, rows, team=team, channel=channel, now=now)
            log.info("quiet_released channel=%s alerts=%d", channel, len(rows))
    return len(due)


def resume_held(session: Session, *, team_id: str, channel_id: str, queue: str, now: datetime) -> None:
    """Owe the held alerts of a subscription whose quiet hours were removed or changed now: they are
    released at the next delivery round."""
    for row in session.exec(
        select(OutboxItem).where(
            OutboxItem.team_id == team_id,
            OutboxItem.channel_id == channel_id,
            OutboxItem.queue == queue,
            OutboxItem.state == "held",
        )
    ).all():
        row.next_attempt_at = now
        session.add(row)
