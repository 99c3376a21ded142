"""Follow-up of unclaimed failures: a subscription with `follow_up` (`--follow-up 30m`, or
`follow_up = "30m"` in [[subscriptions]]) gets, for each failure or time-out alert told to its channel
that nobody in the workspace has claimed (bot/features/claiming.py) after that long, one reply in the
job's thread mentioning the job's owner when jobwatch knows their Slack user, else `[bot]
follow_up_group` (a user group, `<!subteam^S…>`), else nobody.

Written by the poll's transaction (bot/pipeline/enqueue.py), so it is fenced by the lease like every
other row:

- **once**: its alert_id `followup:<alert id>` is unique per channel in the outbox, across polls and
  restarts (and a row already written for it, in any state, is not written again);
- **never during quiet hours**: a channel inside its window gets nothing now; the first poll after
  the window ends writes it (the failure is still unclaimed and past its time);
- **not after a claim**, and **not for a job whose family has succeeded since** (a retry that
  worked: run_history has a succeeded run of the family that ended after the failure); one written
  but not yet sent is withdrawn (deleted, as a changed subscription withdraws its rows) by the
  claim's transaction, or by the poll that brings the family's success (`withdraw_fixed`);
- a note like any other (docs/architecture.md §Message policy): a mute of the channel or job holds it
  back (not written), and it waits for its alert (`after`), going only into the job's thread.

Failures told more than LOOK_BACK ago are not looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.blocks.text import safe
from bot.core import history
from bot.core.alert_ids import follow_up_id
from bot.core.ids import USER_RE
from bot.core.outbox import OutboxRow, OutboxState, TextPayload
from bot.core.owners import OWNER_KEY
from bot.core.policy import hold_muted
from bot.core.subscriptions import Subscribed
from bot.store import claims, mutes, outbox, snapshots
from bot.store.owners import known_users
from providers import Job

LOOK_BACK = timedelta(days=7)
GROUP_RE = re.compile(r"^S[A-Z0-9]{2,40}$")


def follow_up_text(job: Job, told: datetime, now: datetime, who: str) -> str:
    """`:bell: *etl-9* failed 35 min ago and nobody has claimed it. <@U…>: press Claim if you're on it.`"""
    ago = history.short(max(0.0, (now - told).total_seconds()))
    what = "timed out" if job.status.value == "timed_out" else "failed"
    ask = (
        f" {who}: press *Claim* on its card if you are on it."
        if who
        else " Press *Claim* on its card if you are on it."
    )
    return f":bell: *{safe(job.name)}* {what} {ago} ago and nobody has claimed it.{ask}"


def follow_up_rows(
    session: Session,
    subs: Iterable[Subscribed],
    *,
    queue: str,
    now: datetime,
    default_tz: str,
    group: str | None,
    owners_table: Mapping[str, str],
    pattern: re.Pattern[str] | None = None,
) -> list[OutboxRow]:
    """The follow-ups this poll owes the queue's subscriptions (see the module docstring)."""
    rows: list[OutboxRow] = []
    for sub in subs:
        wait = sub.filter.follow_up
        if not wait or not sub.active:
            continue
        if sub.quiet is not None and sub.quiet.ends(now, default_tz) is not None:
            continue  # inside the window: the first poll after it writes what is due
        told = claims.told_failures(
            session, sub.team_id, sub.channel_id, queue, since=now - LOOK_BACK, before=now - timedelta(seconds=wait)
        )
        if not told:
            continue
        done = claims.written(session, sub.team_id, sub.channel_id, [follow_up_id(a) for a, _, _ in told])
        taken = claims.claimed_ids(session, sub.team_id, queue, [job.id for _, job, _ in told])
        families = {job.id: history.family_of(job.name, pattern) for _, job, _ in told}
        fixed = claims.last_successes(session, queue, families.values())
        owners = {str(job.extra.get(OWNER_KEY) or "") for _, job, _ in told} - {""}
        users = known_users(session, sub.team_id, owners, owners_table) if owners else {}
        for alert_id, job, at in told:
            ended = job.ended_at or at
            success = fixed.get(families[job.id])
            if follow_up_id(alert_id) in done or job.id in taken or (success is not None and success > ended):
                continue
            user = users.get(str(job.extra.get(OWNER_KEY) or ""))
            if user and USER_RE.match(user):
                who = f"<@{user}>"
            elif group and GROUP_RE.match(group):
                who = f"<!subteam^{group}>"
            else:
                who = ""
            note = TextPayload(follow_up_text(job, at, now, who), thread_only=True, after=alert_id)
            rows.append(
                OutboxRow.note(
                    follow_up_id(alert_id),
                    note,
                    team_id=sub.team_id,
                    channel_id=sub.channel_id,
                    queue=queue,
                    job_id=job.id,
                    status=job.status.value,
                    now=now,
                )
            )
    if not rows:
        return rows
    # a note a mute holds is not written at all (as every note: bot/pipeline/owed.py)
    return [r for r in hold_muted(rows, mutes.silenced(session, queue, now)) if r.state is not OutboxState.MUTED]


def withdraw_fixed(
    session: Session, queue: str, successes: Iterable[Job], *, now: datetime, pattern: re.Pattern[str] | None
) -> int:
    """Withdraw the follow-ups still owed (written, not yet being sent) of failures whose family one of
    `successes` (this poll's succeeded jobs) fixed: it ended after the failure. In the poll's
    transaction; returns how many."""
    fixed: dict[str, datetime] = {}  # family -> when its newest success ended
    for job in successes:
        family, ended = history.family_of(job.name, pattern), job.ended_at or job.updated_at or now
        fixed[family] = max(fixed.get(family, ended), ended)
    owed = outbox.follow_up_jobs(session, queue) if fixed else set()
    if not owed:
        return 0
    gone = [
        failure.id
        for failure in snapshots.jobs_of(session, queue, sorted(owed))
        if (success := fixed.get(history.family_of(failure.name, pattern))) is not None
        and success > (failure.ended_at or failure.updated_at or success - timedelta(seconds=1))
    ]
    return outbox.withdraw_follow_ups(session, queue=queue, job_ids=gone) if gone else 0
