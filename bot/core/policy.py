"""The rules every message owed to a channel goes through before it is written to the outbox, in one
place: a running mute keeps it as `muted` (never posted, counted in the mute's summary), and quiet
hours hold it until the window ends (bot/core/quiet.py). Pure functions of typed rows; the pipeline
applies them in the order bot/pipeline/owed.py gives."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.core.outbox import QUIET_HELD, QUIET_PASSES_FAILURES, OutboxRow, OutboxState
from bot.core.quiet import PASS_THROUGH
from bot.core.subscriptions import Subscribed


def hold_quiet(
    rows: Iterable[OutboxRow], subs: Iterable[Subscribed], *, now: datetime, default_tz: str
) -> list[OutboxRow]:
    """The rows, those of the kinds quiet hours hold (QUIET_HELD: alerts and flags) for channels
    inside their window `held` until it ends. Failure and time-out alerts (QUIET_PASSES_FAILURES)
    pass unless the window says `everything`; a slow or stuck flag is no failure, so it is held
    whenever the window holds alerts."""
    ends: dict[tuple[str, str, str], tuple[datetime, bool]] = {}
    for sub in subs:
        if sub.quiet is not None and (closes := sub.quiet.ends(now, default_tz)) is not None:
            ends[(sub.team_id, sub.channel_id, sub.queue)] = (closes, sub.quiet.everything)
    if not ends:
        return list(rows)
    out: list[OutboxRow] = []
    for row in rows:
        found = ends.get((row.team_id, row.channel_id, row.queue))
        if found is None or row.state is not OutboxState.PENDING or row.kind not in QUIET_HELD:
            out.append(row)
            continue
        closes, everything = found
        passes = row.kind in QUIET_PASSES_FAILURES and row.new_status in PASS_THROUGH and not everything
        out.append(row if passes else row.but(state=OutboxState.HELD, next_attempt_at=closes))
    return out


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
