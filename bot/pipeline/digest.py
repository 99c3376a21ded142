"""Fold waiting alerts into one digest: a parent with counts by status (failures by cause) and
thread replies listing every job, all outbox rows written in the caller's transaction.

Used for a burst (bot/pipeline/deliver.py, more than `digest_threshold` alerts waiting for one
channel) and for the end of quiet hours (bot/core/quiet.py). The digest's alert_id is derived from the
alert_ids it folds, so a fold that is retried after a crash writes the same rows (the outbox's
unique (team, channel, alert_id) keeps them once).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from bot.blocks import render
from bot.core.outbox import OutboxKind, OutboxState
from bot.store.tables import OutboxItem
from providers import Job


def fold(
    session: Session,
    rows: Sequence[OutboxItem],
    jobs: Sequence[Job],
    *,
    prefix: str,
    team: str,
    channel: str,
    now: datetime,
    title: str = "",
) -> tuple[OutboxItem, int]:
    """Add the digest of `rows` (listing `jobs`, one line each) and mark `rows` digested into it;
    returns the digest row and how many thread replies it has."""
    queues = sorted({r.queue for r in rows})
    key = f"{prefix}:" + hashlib.sha256("|".join(r.alert_id for r in rows).encode()).hexdigest()[:32]

    def owed(alert_id: str, kind: OutboxKind, payload: str, parent_id: int | None = None) -> OutboxItem:
        return OutboxItem(
            alert_id=alert_id,
            kind=kind.value,
            team_id=team,
            channel_id=channel,
            queue=queues[0],
            payload=payload,
            parent_id=parent_id,
            next_attempt_at=now,
            created_at=now,
        )

    body: dict[str, object] = {
        "counts": dict(Counter(j.status.value for j in jobs)),
        "queues": queues,
        "causes": render.cause_counts(jobs),
    }
    if title:
        body["title"] = title
    digest = owed(key, OutboxKind.DIGEST, json.dumps(body))
    session.add(digest)
    session.flush()
    lines = [[j.name, j.queue, j.native_status, j.status.value] for j in jobs]
    chunks = [lines[i : i + render.DIGEST_LINES] for i in range(0, len(lines), render.DIGEST_LINES)]
    for n, chunk in enumerate(chunks, 1):
        payload = json.dumps({"lines": chunk, "part": n, "parts": len(chunks)})
        session.add(owed(f"{key}:{n}", OutboxKind.DIGEST_PART, payload, digest.id))
    for row in rows:
        row.state = OutboxState.DIGESTED.value
        row.parent_id = digest.id
        session.add(row)
    return digest, len(chunks)
