"""What one poll owes Slack: the outbox rows of its transitions and flags, before they are written.

Every row is built with one OutboxRow constructor (bot/core/outbox.py) and goes through the same
rules (bot/core/policy.py), in this order, inside the poll's transaction (bot/pipeline/enqueue.py
`commit_poll`); each rule acts on the kinds its named set gives (FILTERED, MUTE_HELD, QUIET_HELD,
ANNOUNCED) and lets the others through, as the table of docs/architecture.md §Message policy says:

1. the subscription filter (`wanted`): alerts, flags and retry notes per channel that wants them;
2. mutes (`hold_muted`): a muted channel's alerts and flags are kept as `muted`, its notes not written;
3. quiet hours (`hold_quiet`): alerts and flags held until the window ends;
4. what follows from the rows that will be posted: an owner's mention after a failure alert, the
   watchers' and owners' direct messages, log-tail requests, retry notes and runtime-limit warnings
   (bot/pipeline/limits.py) in the job's thread, through rules 2 and 3 in turn;
5. the baseline (`baseline_owes`): a queue's first poll owes none of it. Its transitions are empty
   and its flags are not looked for (bot/pipeline/usual.py) anyway, and retry notes wait for the
   first poll after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.blocks.alerts import with_claim
from bot.blocks.notes import mention_text
from bot.core import owners
from bot.core.alert_ids import dm_end_id, dm_owner_id, dm_run_id, owner_note_id, retry_id
from bot.core.outbox import STATUS_CHANGES, OutboxKind, OutboxRow, OutboxState, TextPayload
from bot.core.owners import OwnerNotify
from bot.core.policy import baseline_owes, hold_muted, hold_quiet, wanted
from bot.core.subscriptions import Subscribed
from bot.pipeline.diff import Transition
from bot.pipeline.limits import limit_notes
from bot.pipeline.usual import Flag
from bot.store import claims, mutes, threads, watches
from providers import Job, JobStatus
from providers.attempts import attempt_of, retry_text

LOG_TAIL_ON = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})  # statuses whose alerts get a log tail


@dataclass(frozen=True)
class Owed:
    """Everything one poll writes besides the snapshot: the outbox rows and the log-tail requests
    (the failures, by transition, whose log is to be read into their threads)."""

    rows: list[OutboxRow]
    log_tails: list[Transition]


def alert_rows(
    subs: Iterable[Subscribed], transitions: Iterable[Transition], now: datetime, users: Mapping[str, str]
) -> list[OutboxRow]:
    """One alert per (transition x active channel whose filter wants it); `users`: job id -> its
    owner's Slack user id, for owner filters. A quiet transition (within a provider's retry,
    bot/pipeline/diff.py) gets none."""
    active = [s for s in subs if s.active]
    return [
        OutboxRow.alert(t.alert_id, t.job, t.old, team_id=sub.team_id, channel_id=sub.channel_id, now=now)
        for t in transitions
        if not t.quiet
        for sub in active
        if wanted(sub.filter, OutboxKind.ALERT, t.job, owner=users.get(t.job.id))
    ]


def flag_rows(
    subs: Iterable[Subscribed], found: Iterable[Flag], now: datetime, users: Mapping[str, str]
) -> list[OutboxRow]:
    """One flag per (slow or stuck job x active channel whose filter wants that kind of flag)."""
    active = [s for s in subs if s.active]
    rows: list[OutboxRow] = []
    for flag in found:
        shown = flag.job.model_copy(
            update={"extra": {**flag.job.extra, "flag": flag.kind.value, "flag_text": flag.text}}
        )
        for sub in active:
            if wanted(sub.filter, OutboxKind.FLAG, flag.job, flag=flag.kind, owner=users.get(flag.job.id)):
                rows.append(
                    OutboxRow.flag(
                        flag.alert_id, flag.kind, shown, team_id=sub.team_id, channel_id=sub.channel_id, now=now
                    )
                )
    return rows


def retry_rows(
    session: Session, subs: Iterable[Subscribed], jobs: Iterable[Job], alerts: Sequence[OutboxRow], now: datetime
) -> list[OutboxRow]:
    """The thread notes owed for failed attempts that the provider retries (providers/attempts.py).

    `jobs`: the jobs this poll stores anew. Each live job on attempt n > 1 owes one note, "attempt
    n-1 of N failed: <cause>, retrying", to each channel `thread_notes` picks. Its id (`retry_id`)
    makes the outbox's unique key keep it to one per attempt and channel, however often the job is
    stored again and across restarts.
    """
    notes = [
        (job, retry_id(job.queue, job.id, attempt_of(job) - 1), text)
        for job in jobs
        if (text := retry_text(job)) is not None
    ]
    return thread_notes(session, subs, notes, alerts, now)


def thread_notes(
    session: Session,
    subs: Iterable[Subscribed],
    notes: Sequence[tuple[Job, str, str]],
    alerts: Sequence[OutboxRow],
    now: datetime,
) -> list[OutboxRow]:
    """Thread-only notes, each (job, note id, text), to each active subscribed channel whose filter
    takes the job and that has a thread for it (or gets its first alert about the job in this poll,
    `alerts`, which the note then follows). Delivery never posts a note at the channel's top level."""
    if not notes:
        return []
    active = [s for s in subs if s.active]
    first = {(a.channel_id, a.job_id): a.alert_id for a in alerts if a.kind is OutboxKind.ALERT}
    rows: list[OutboxRow] = []
    for job, note_id, text in notes:
        threaded = threads.channels_with_thread(session, job.queue, job.id)
        for sub in active:
            after = first.get((sub.channel_id, job.id))
            if (sub.team_id, sub.channel_id) not in threaded and after is None:
                continue
            if not wanted(sub.filter, OutboxKind.NOTE, job):
                continue
            note = TextPayload(text, thread_only=True, after=after or "")
            rows.append(
                OutboxRow.note(
                    note_id,
                    note,
                    team_id=sub.team_id,
                    channel_id=sub.channel_id,
                    queue=job.queue,
                    job_id=job.id,
                    status=job.status.value,
                    now=now,
                )
            )
    return rows


def watch_rows(session: Session, queue: str, transitions: Sequence[Transition], now: datetime) -> list[OutboxRow]:
    """The direct messages a poll owes the people watching its jobs, and the end of their watches.

    A watched job that ends gets one DM per watcher and the watch is deleted (in the poll's
    transaction); one that moves from queued to running gets one DM too, keyed by the job so a
    job that runs twice says so once. Channel mutes do not hold DMs back.
    """
    moved = {t.job.id: t for t in transitions if t.job.status.terminal or _started(t)}
    rows: list[OutboxRow] = []
    for watch in watches.of_jobs(session, queue, list(moved)):
        t = moved[watch.job_id]
        if t.job.status.terminal:
            key = dm_end_id(t.alert_id)
            watches.end(session, watch)
        else:
            key = dm_run_id(queue, t.job.id)
        rows.append(OutboxRow.dm(key, t.job, t.old, team_id=watch.team_id, user_id=watch.user_id, now=now))
    return rows


def owner_rows(
    alerts: Iterable[OutboxRow],
    transitions: Sequence[Transition],
    users: Mapping[str, str],
    *,
    notify: OwnerNotify,
    watchers: set[tuple[str, str]],
    dm_team: str,
    now: datetime,
) -> list[OutboxRow]:
    """The outbox rows an owner is owed for this poll's transitions.

    `users`: job id -> the owner's validated Slack user id. `alerts`: the alert rows this poll
    writes; each failure or time-out alert that is to be posted (pending, or held for quiet hours)
    gets one note, after it, in the same channel, that mentions the owner in the job's thread
    (delivery never posts it at the channel's top level). With `notify` DM a job that ends
    also sends the owner the watcher's DM, unless they watch it (`watchers`: (job id, user)).
    """
    if notify is OwnerNotify.OFF:
        return []
    by_id = {t.job.id: t for t in transitions}
    rows: list[OutboxRow] = []
    for alert in alerts:
        t = by_id.get(alert.job_id)
        user = users.get(alert.job_id)
        if t is None or user is None or t.job.status not in owners.MENTION_ON or not alert.to_post:
            continue
        note = TextPayload(mention_text(user, t.job), thread_only=True, after=alert.alert_id)
        rows.append(
            alert.but(
                alert_id=owner_note_id(t.alert_id),
                kind=OutboxKind.NOTE,
                old_status=None,
                payload=note.dump(),
                state=OutboxState.PENDING,
            )
        )
    if notify is OwnerNotify.DM:
        for t in transitions:
            user = users.get(t.job.id)
            if user is not None and t.job.status.terminal and (t.job.id, user) not in watchers:
                rows.append(OutboxRow.dm(dm_owner_id(t.alert_id), t.job, t.old, team_id=dm_team, user_id=user, now=now))
    return rows


def log_tails(rows: Iterable[OutboxRow], transitions: Sequence[Transition]) -> list[Transition]:
    """The failures and time-outs that some channel is to be told about (an alert row pending, or
    held for quiet hours): each gets one log-tail request (bot/pipeline/logtail.py)."""
    told = {r.alert_id for r in rows if r.kind is OutboxKind.ALERT and r.to_post}
    return [t for t in transitions if t.job.status in LOG_TAIL_ON and t.alert_id in told]


def _started(t: Transition) -> bool:
    return t.old is JobStatus.QUEUED and t.job.status is JobStatus.RUNNING


@dataclass(frozen=True)
class Told:
    """What a poll has to tell: its changes and flags, and how this queue tells them."""

    queue: str
    now: datetime
    changed: Sequence[Transition]  # every transition of the poll
    shown: Sequence[Transition]  # the same, with what is usual on the job (what alerts show)
    flags: Sequence[Flag]
    upserts: Sequence[Job]  # the jobs stored anew (retried attempts among them owe notes)
    users: Mapping[str, str]  # job id -> owner's Slack user id
    timezone: str  # of quiet hours that name none
    owner_notify: OwnerNotify
    ops_team: str
    log_tail: bool
    after_baseline: bool  # the queue had its baseline before this poll
    live: Sequence[Job] = ()  # the queue's live jobs after this poll (runtime-limit warnings look at them)


def owed(session: Session, subs: Sequence[Subscribed], told: Told) -> Owed:
    """The rows `told` owes the queue's subscribed channels, watchers and owners (the module
    docstring gives the order of the rules). Every row goes through every rule, and each rule acts
    on the kinds its set in bot/core/outbox.py names (docs/architecture.md §Message policy)."""
    silenced = mutes.silenced(session, told.queue, told.now)

    def rules(rows: list[OutboxRow]) -> list[OutboxRow]:
        return hold_quiet(hold_muted(rows, silenced), subs, now=told.now, default_tz=told.timezone)

    news = rules(alert_rows(subs, told.shown, told.now, told.users) + flag_rows(subs, told.flags, told.now, told.users))
    watched = watch_rows(session, told.queue, told.changed, told.now)
    following: list[OutboxRow] = []
    if told.users:
        watchers = {(r.job_id, r.channel_id) for r in watched}
        dm_team = subs[0].team_id if subs else told.ops_team
        following += owner_rows(
            news,
            told.changed,
            told.users,
            notify=told.owner_notify,
            watchers=watchers,
            dm_team=dm_team,
            now=told.now,
        )
    following += watched
    if told.after_baseline:  # not even looked for at a baseline, which would owe none of them
        following += retry_rows(session, subs, told.upserts, news, told.now)
        following += thread_notes(session, subs, limit_notes(told.live, told.now), news, told.now)
    # a note a mute holds is not written at all: the mute's summary counts alerts and flags, not replies
    following = [r for r in rules(following) if r.state is not OutboxState.MUTED]
    rows = claimed_cards(session, told.queue, baseline_owes(news + following, baseline=not told.after_baseline))
    return Owed(rows, log_tails(rows, told.changed) if told.log_tail else [])


def claimed_cards(session: Session, queue: str, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
    """The status changes (STATUS_CHANGES) of jobs someone in the row's workspace has claimed
    (bot/features/claiming.py), with the claim in their payload: delivery redraws the job's card
    from it, so the card keeps saying who has the job. Read in the poll's transaction, so a claim
    committed before it is seen, and one committed after it brings the card up to date itself."""
    ids = [r.job_id for r in rows if r.kind in STATUS_CHANGES]
    found = claims.of_jobs(session, queue, ids) if ids else {}
    if not found:
        return list(rows)
    out: list[OutboxRow] = []
    for row in rows:
        claim = found.get((row.team_id, row.job_id)) if row.kind in STATUS_CHANGES else None
        if claim is not None:
            job = with_claim(Job.stored(row.payload), claim.user_id, claim.previous)
            row = row.but(payload=job.model_dump_json())
        out.append(row)
    return out
