"""The rules every message owed to a channel goes through before it is written to the outbox, in one
place: quiet hours hold it until the window ends (bot/core/quiet.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.core.outbox import OutboxRow, OutboxState
from bot.core.quiet import PASS_THROUGH
from bot.core.subscriptions import Subscribed


def hold_quiet(rows: list[dict[str, object]], subs: Iterable[Subscribed], *, now: datetime, default_tz: str) -> int:
    """Mark the pending alerts of channels in their quiet window `held` until it ends; returns how many."""
    ends: dict[tuple[str, str, str], tuple[datetime, bool]] = {}
    for sub in subs:
        if sub.quiet is not None and (closes := sub.quiet.ends(now, default_tz)) is not None:
            ends[(sub.team_id, sub.channel_id, sub.queue)] = (closes, sub.quiet.everything)
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


Silenced = frozenset[tuple[str, str, str]]  # running mutes: (team, channel, job id); job id "" is the whole queue


def hold_muted(rows: Iterable[OutboxRow], silenced: Silenced) -> list[OutboxRow]:
    """The rows, those of a muted channel+queue (or job) recorded as `muted`: kept, never posted."""
    if not silenced:
        return list(rows)
    return [
        r.but(state=OutboxState.MUTED)
        if (r.team_id, r.channel_id, "") in silenced or (r.team_id, r.channel_id, r.job_id) in silenced
        else r
        for r in rows
    ]
