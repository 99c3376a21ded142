"""Fold waiting alerts into one digest: a parent with counts by status (failures by cause) and
thread replies listing every job, all outbox rows written in the caller's transaction.

Used for a burst (bot/pipeline/deliver.py, more than `digest_threshold` alerts waiting for one
channel) and for the end of quiet hours (bot/pipeline/quiet.py). The digest's alert_id is derived from
the alert_ids it folds (bot/core/outbox.py `digest_id`), so a fold that is retried after a crash writes
the same rows (the outbox's unique (team, channel, alert_id) keeps them once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from bot.blocks import render
from bot.core.outbox import DigestOrigin, DigestPartPayload, DigestPayload, OutboxRow, digest_id
from bot.store import outbox
from bot.store.tables import OutboxItem
from providers import Job


def fold(
    session: Session,
    rows: Sequence[OutboxItem],
    jobs: Sequence[Job],
    *,
    origin: DigestOrigin,
    team: str,
    channel: str,
    now: datetime,
    title: str = "",
) -> int:
    """Add the digest of `rows` (listing `jobs`, one line each) and mark `rows` digested into it;
    returns how many thread replies it has."""
    queues = sorted({r.queue for r in rows})
    body = DigestPayload(Counter(j.status.value for j in jobs), queues, render.cause_counts(jobs), title=title)
    digest = OutboxRow.digest(
        digest_id(origin, (r.alert_id for r in rows)), body, team_id=team, channel_id=channel, queue=queues[0], now=now
    )
    lines = [[j.name, j.queue, j.native_status, j.status.value] for j in jobs]
    chunks = [lines[i : i + render.DIGEST_LINES] for i in range(0, len(lines), render.DIGEST_LINES)]
    parts = [
        OutboxRow.digest_part(digest, n, DigestPartPayload(chunk, n, len(chunks))) for n, chunk in enumerate(chunks, 1)
    ]
    outbox.add_digest(session, digest, parts, rows)
    return len(chunks)
