"""Fold waiting rows into one digest: a parent with counts by status (failures by cause) and by flag
(slow, stuck), and thread replies listing every job, all outbox rows written in the caller's
transaction.

Used for a burst (bot/pipeline/deliver.py, more than `digest_threshold` alerts and flags waiting for
one channel) and for the end of quiet hours (bot/pipeline/quiet.py). Only the kinds of
core.outbox.FOLDED are folded: a status change (`alert`) counts by its new status and lists the job
with its native status; a slow or stuck `flag` counts by its kind, apart from the statuses, and lists
the job with the flag's words. The digest's alert_id is derived from the alert_ids it folds
(bot/core/outbox.py `digest_id`), so a fold that is retried after a crash writes the same rows (the
outbox's unique (team, channel, alert_id) keeps them once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import assert_never

from sqlmodel import Session

from bot.blocks import render
from bot.core.alert_ids import DigestOrigin, digest_id
from bot.core.outbox import DigestPartPayload, DigestPayload, OutboxKind, OutboxRow
from bot.core.subscriptions import FlagKind
from bot.store import outbox
from bot.store.tables import OutboxItem
from providers import Job


class NotFolded(ValueError):
    """A row of a kind no digest folds (core.outbox.FOLDED) was handed to `fold`."""


def fold(
    session: Session,
    rows: Sequence[OutboxItem],
    *,
    origin: DigestOrigin,
    team: str,
    channel: str,
    now: datetime,
    title: str = "",
    listed: Sequence[OutboxItem] | None = None,
    jobs: Mapping[str, Job] | None = None,
) -> int:
    """Add the digest of `rows` and mark them digested into it; returns how many thread replies it
    has. `listed`: the rows it counts and lists (default: all of `rows`; quiet hours list each job's
    last status once). Status changes are listed first, then the flags, each in the rows' order.
    `jobs`: the rows' jobs by alert id where the caller has them (a burst folded in the transaction
    that wrote it), instead of reading each payload again."""
    changes: list[Job] = []
    flagged: list[tuple[FlagKind, Job]] = []
    known = jobs or {}
    for row in rows if listed is None else listed:
        kind = OutboxKind(row.kind)
        match kind:
            case OutboxKind.ALERT:
                changes.append(known.get(row.alert_id) or Job.stored(row.payload))
            case OutboxKind.FLAG:
                flagged.append((FlagKind(row.new_status), known.get(row.alert_id) or Job.stored(row.payload)))
            case (
                OutboxKind.NOTE
                | OutboxKind.NOTICE
                | OutboxKind.DM
                | OutboxKind.DIGEST
                | OutboxKind.DIGEST_PART
                | OutboxKind.STEP
            ):  # never folded: docs/architecture.md §Message policy
                raise NotFolded(f"a {kind} row is never folded into a digest (outbox id {row.id})")
            case _:
                assert_never(kind)
    queues = sorted({r.queue for r in rows})
    body = DigestPayload(
        Counter(j.status.value for j in changes),
        queues,
        render.cause_counts(changes),
        title=title,
        flags=Counter(flag.value for flag, _ in flagged),
    )
    digest = OutboxRow.digest(
        digest_id(origin, (r.alert_id for r in rows)), body, team_id=team, channel_id=channel, queue=queues[0], now=now
    )
    lines = [[j.name, j.queue, j.native_status, j.status.value] for j in changes]
    lines += [[j.name, j.queue, str(j.extra.get("flag_text") or ""), flag.value] for flag, j in flagged]
    chunks = [lines[i : i + render.DIGEST_LINES] for i in range(0, len(lines), render.DIGEST_LINES)]
    parts = [
        OutboxRow.digest_part(digest, n, DigestPartPayload(chunk, n, len(chunks))) for n, chunk in enumerate(chunks, 1)
    ]
    outbox.add_digest(session, digest, parts, rows)
    return len(chunks)
