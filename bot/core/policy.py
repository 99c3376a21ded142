"""The rules every message owed to a channel goes through before it is written to the outbox, in one
place: a queue's baseline announces nothing, the subscription filter decides which channels it is
for, a running mute keeps it as `muted` (never posted, counted in the mute's summary), and quiet
hours hold it until the window ends (bot/core/quiet.py). Each rule acts on the kinds of its named
set (bot/core/outbox.py) and lets the others through; docs/architecture.md §Message policy gives
the table. Pure functions of typed rows; the pipeline applies them in the order
bot/pipeline/owed.py gives."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import assert_never

from bot.core.outbox import (
    ANNOUNCED,
    MUTE_HELD,
    QUIET_HELD,
    QUIET_PASSES_FAILURES,
    OutboxKind,
    OutboxRow,
    OutboxState,
)
from bot.core.quiet import PASS_THROUGH
from bot.core.subscriptions import FlagKind, Subscribed, SubscriptionFilter
from providers import Job


def baseline_owes(rows: Iterable[OutboxRow], *, baseline: bool) -> list[OutboxRow]:
    """The rows, but at a queue's `baseline` (its first poll) none of the kinds it would announce
    (ANNOUNCED: alerts, flags, notes, DMs): jobs already there when jobwatch starts are not news.
    An operator's notice (the queue polls again) is no news about a job: it is owed all the same."""
    return [r for r in rows if r.kind not in ANNOUNCED] if baseline else list(rows)


def wanted(
    by: SubscriptionFilter, kind: OutboxKind, job: Job, *, flag: FlagKind | None = None, owner: str | None = None
) -> bool:
    """Whether a channel whose subscription filters `by` wants a row of `kind` about `job` (`flag`:
    a flag's kind; `owner`: the Slack user the job's owner maps to, if known). The kinds of FILTERED
    are decided by the filter: a status alert by `wants`, a flag by `wants_flag`, a note (a retry)
    by the job's name; the others are not the subscription's to filter, so they pass."""
    match kind:
        case OutboxKind.ALERT:
            return by.wants(job, owner)
        case OutboxKind.FLAG:
            return flag is not None and by.wants_flag(flag, job, owner)
        case OutboxKind.NOTE:
            return by.wants_name(job.name)
        case OutboxKind.NOTICE | OutboxKind.DM | OutboxKind.DIGEST | OutboxKind.DIGEST_PART | OutboxKind.STEP:
            # an operator's notice, a person's DM, digests folded from filtered rows or scheduled,
            # a workflow step's completion (the workflow asked)
            return True
        case _:
            assert_never(kind)


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
    """The rows, those of the kinds a mute holds (MUTE_HELD: alerts, flags, notes) of a muted
    channel+queue (or job) recorded as `muted`: kept, never posted. A DM is a person's, not the
    channel's: a channel's mute does not hold it."""
    if not silenced:
        return list(rows)
    return [
        r.but(state=OutboxState.MUTED)
        if r.kind in MUTE_HELD
        and ((r.team_id, r.channel_id, "") in silenced or (r.team_id, r.channel_id, r.job_id) in silenced)
        else r
        for r in rows
    ]
