"""The end of quiet hours: each channel's held alerts and flags, folded into one "While you were
away" digest.

The hold itself is decided at enqueue (bot/core/policy.py `hold_quiet`); this side job runs each
delivery round, behind the lease, and turns the held rows of every ended window into a digest
(bot/pipeline/digest.py) in one transaction per channel, so it is posted exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from bot.core.alert_ids import DigestOrigin
from bot.core.outbox import STATUS_CHANGES
from bot.core.quiet import AWAY_TITLE
from bot.pipeline.digest import fold as fold_digest
from bot.store import outbox
from bot.store.db import Database
from bot.store.lease import Fence
from bot.store.tables import OutboxItem

log = logging.getLogger(__name__)


def _digest_rows(session: Session, rows: Sequence[OutboxItem], *, team: str, channel: str, now: datetime) -> None:
    """The away digest of `rows` (parent and thread replies), added to the session; rows digested.
    Each job's status changes count and are listed once, with the last status it reached in the
    window; each slow or stuck flag (once per job and kind already) counts and is listed apart."""
    latest = {(r.queue, r.job_id): r for r in rows if r.kind in STATUS_CHANGES}
    listed = [*latest.values(), *(r for r in rows if r.kind not in STATUS_CHANGES)]
    fold_digest(
        session, rows, origin=DigestOrigin.AWAY, team=team, channel=channel, now=now, title=AWAY_TITLE, listed=listed
    )


def release(db: Database, now: datetime, fence: Fence | None = None) -> int:
    """Fold every channel's held rows (core.outbox.QUIET_HELD: alerts and flags) whose window has
    ended into one away digest per channel, one transaction per channel; returns the channels
    released."""
    with db.read() as session:
        due = outbox.held_channels(session, now)
    for team, channel in due:
        with db.write() as session:
            if fence is not None:
                fence.check(session)
            rows = outbox.held(session, team, channel, now)
            if not rows:
                continue  # another round released them first
            _digest_rows(session, rows, team=team, channel=channel, now=now)
            log.info("quiet_released channel=%s rows=%d", channel, len(rows))
    return len(due)
