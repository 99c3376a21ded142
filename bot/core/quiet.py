"""Quiet hours that defer: a subscription's window (`/jobs subscribe ml --quiet 20:00-08:00`, or
`quiet = "20:00-08:00"` in a [[subscriptions]] entry) holds its alerts and its slow and stuck flags
instead of posting them.

While the window runs, the poll's transaction (bot/pipeline/enqueue.py `commit_poll`) writes the
channel's alerts and flags as `held` with the window's end in `next_attempt_at`; failed and
timed_out alerts still go out at once unless the subscription says `quiet_all` (a flag is no
failure: it is held either way). When the window ends, `release` (called by the worker each
delivery round, behind the lease) folds each channel's held rows, in one transaction, into one
"While you were away" digest: a parent with counts by status (and flags by kind) and thread
replies listing the jobs, outbox rows like any other, so they are posted exactly once and survive
restarts. The held rows become `digested` (parent_id: the digest); once the digest is posted,
delivery brings the card (its thread parent) of each job whose status changed up to date
(bot/pipeline/send.py `Sender._update_cards`).

Window times are wall-clock times in the subscription's `quiet_tz`, or `[bot] timezone`; a window
whose start is after its end crosses midnight. Across a daylight-saving change the window keeps
its wall-clock times (zoneinfo): a time that falls in the skipped hour moves forward by the hour
skipped (02:30 becomes 03:30; PEP 495's fold=0 rule), and a time in the repeated hour is its first
occurrence.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers import JobStatus

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


@dataclass(frozen=True)
class QuietHours:
    """A subscription's quiet window: `start`-`end` wall-clock ("HH:MM") in `tz` (None: [bot]
    timezone); `everything`: failures and time-outs are held too."""

    start: str
    end: str
    tz: str | None = None
    everything: bool = False

    @classmethod
    def from_columns(
        cls, start: str | None, end: str | None, tz: str | None = None, everything: bool = False
    ) -> QuietHours | None:
        """The window a subscription row stores, or None without one."""
        if not start or not end:
            return None
        return cls(start, end, tz or None, everything)

    def columns(self) -> tuple[str, str, str | None, bool]:
        """(quiet_start, quiet_end, quiet_tz, quiet_all) as a subscription row stores them."""
        return self.start, self.end, self.tz, self.everything

    def ends(self, now: datetime, default_tz: str) -> datetime | None:
        """Where the window ends (UTC) if `now` is inside it, else None."""
        return window_end(now, self.start, self.end, ZoneInfo(self.tz or default_tz))

    def label(self) -> str:
        """`quiet 20:00-08:00 Europe/Paris, failures held too`."""
        text = f"quiet {self.start}-{self.end}" + (f" {self.tz}" if self.tz else "")
        return text + (", failures held too" if self.everything else "")


def label(hours: QuietHours | None) -> str:
    """The window's label, empty without quiet hours."""
    return "" if hours is None else hours.label()
