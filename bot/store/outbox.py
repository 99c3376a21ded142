"""The outbox in the store. For the features: what a channel is still owed, and what a change of
its subscription (filters, quiet hours, unsubscribe) does to those rows. For delivery
(bot/pipeline/deliver.py and the stages beside it): the due rows, each step of a row's way
(claim, sent, retry, dead, requeue; bot/core/outbox.py draws the states), the digests that fold
rows, and what a log tail or a scheduled digest looks up. The writes are idempotent (`insert`)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.core import owners, policy
from bot.core.alert_ids import FOLLOW_UP
from bot.core.outbox import (
    FOLDED,
    STATUS_CHANGES,
    TO_POST,
    TOLD,
    WITHDRAWABLE,
    WITHDRAWN,
    OutboxKind,
    OutboxRow,
    OutboxState,
)
from bot.core.subscriptions import FlagKind, SubscriptionFilter
from bot.store.db import chunks, insert_ignore
from bot.store.owners import known_users
from bot.store.tables import OutboxItem, Subscription
from providers import Job


def resume_held(session: Session, *, team_id: str, channel_id: str, queue: str, now: datetime) -> None:
    """Owe the held alerts of a subscription whose quiet hours were removed or changed now: they are
    released at the next delivery round."""
    for row in session.exec(
        select(OutboxItem).where(
            OutboxItem.team_id == team_id,
            OutboxItem.channel_id == channel_id,
            OutboxItem.queue == queue,
            OutboxItem.state == OutboxState.HELD,
        )
    ).all():
        row.next_attempt_at = now
        session.add(row)


def withdraw_unwanted(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    queue: str,
    wanted: SubscriptionFilter | None,
    owners_table: Mapping[str, str] | None = None,
) -> int:
    """Delete the alerts and flags (core.outbox.WITHDRAWN) a channel is still owed (pending, held by a
    mute or by quiet hours) that its subscription as it now stands no longer wants (`wanted` None: it
    unsubscribed; core.policy.wanted: the filter's rule for each kind); returns how many. Called in
    the same transaction as the change, so the filters decide at delivery too; a row being sent
    stays. `owners_table`: `[owners]`, for an `--owner` filter (with the e-mail lookups already cached)."""
    rows = session.exec(
        select(OutboxItem).where(
            OutboxItem.team_id == team_id,
            OutboxItem.channel_id == channel_id,
            OutboxItem.queue == queue,
            col(OutboxItem.kind).in_(sorted(WITHDRAWN)),
            col(OutboxItem.state).in_(sorted(WITHDRAWABLE)),
        )
    ).all()
    jobs = [(r, Job.stored(r.payload)) for r in rows]
    users: dict[str, str] = {}
    if wanted is not None and wanted.owner:
        values = {str(j.extra.get(owners.OWNER_KEY) or "") for _, j in jobs} - {""}
        users = known_users(session, team_id, values, owners_table or {})
    unwanted = [
        r
        for r, job in jobs
        if wanted is None
        or not policy.wanted(
            wanted,
            OutboxKind(r.kind),
            job,
            flag=FlagKind(r.new_status) if r.kind == OutboxKind.FLAG else None,
            owner=users.get(str(job.extra.get(owners.OWNER_KEY) or "")),
        )
    ]
    for row in unwanted:
        session.delete(row)
    return len(unwanted)


def _owed_follow_ups(queue: str) -> SelectOfScalar[OutboxItem]:
    return select(OutboxItem).where(
        OutboxItem.queue == queue,
        OutboxItem.kind == OutboxKind.NOTE.value,
        col(OutboxItem.alert_id).startswith(FOLLOW_UP),
        col(OutboxItem.state).in_(sorted(WITHDRAWABLE)),
    )


def follow_up_jobs(session: Session, queue: str) -> set[str]:
    """The jobs of `queue` with a follow-up (bot/pipeline/followup.py) still owed to some channel
    (WITHDRAWABLE: written, not yet being sent)."""
    return {row.job_id for row in session.exec(_owed_follow_ups(queue)).all()}


def withdraw_follow_ups(session: Session, *, queue: str, job_ids: Collection[str], team_id: str | None = None) -> int:
    """Delete the follow-ups of `job_ids` still owed (WITHDRAWABLE; of one workspace, or of all with
    None), as a changed subscription withdraws its rows: a claim or a success of the job's family made
    after the follow-up was written takes it back in its own transaction. A row being sent stays.
    Returns how many. The follow-up rule looks at claims and successes again, so none is rewritten."""
    withdrawn = 0
    for chunk in chunks(sorted(set(job_ids))):
        query = _owed_follow_ups(queue).where(col(OutboxItem.job_id).in_(chunk))
        if team_id is not None:
            query = query.where(OutboxItem.team_id == team_id)
        for row in session.exec(query).all():
            session.delete(row)
            withdrawn += 1
    return withdrawn


def owed_cards(session: Session, team_id: str, queue: str, job_id: str) -> Sequence[OutboxItem]:
    """The job's status changes (STATUS_CHANGES) in the workspace that will still be posted (TO_POST):
    each redraws the job's card when it goes."""
    return session.exec(
        select(OutboxItem).where(
            OutboxItem.team_id == team_id,
            OutboxItem.queue == queue,
            OutboxItem.job_id == job_id,
            col(OutboxItem.kind).in_(sorted(STATUS_CHANGES)),
            col(OutboxItem.state).in_(sorted(TO_POST)),
        )
    ).all()


def set_payload(session: Session, row: OutboxItem, payload: str) -> None:
    """Replace a row's payload (a row not yet being sent: the card it shows changed meanwhile)."""
    row.payload = payload
    session.add(row)


def held_channels(session: Session, now: datetime) -> list[tuple[str, str]]:
    """The (team, channel) pairs with alerts held for quiet hours that ended by `now`."""
    rows = session.exec(
        select(OutboxItem.team_id, OutboxItem.channel_id)
        .where(OutboxItem.state == OutboxState.HELD, col(OutboxItem.next_attempt_at) <= now)
        .distinct()
    ).all()
    return [(team, channel) for team, channel in rows]


def held(session: Session, team_id: str, channel_id: str, now: datetime) -> Sequence[OutboxItem]:
    """A channel's rows held for quiet hours that ended by `now`, oldest first."""
    return session.exec(
        select(OutboxItem)
        .where(
            OutboxItem.team_id == team_id,
            OutboxItem.channel_id == channel_id,
            OutboxItem.state == OutboxState.HELD,
            col(OutboxItem.next_attempt_at) <= now,
        )
        .order_by(col(OutboxItem.id))
    ).all()


def told(session: Session, alert_id: str) -> list[tuple[str, str, str]]:
    """(team, channel, status) of each channel that got, or will get, the alert `alert_id`
    (core.outbox.TOLD): where a note that follows it is owed."""
    rows = session.exec(
        select(OutboxItem.team_id, OutboxItem.channel_id, OutboxItem.new_status).where(
            OutboxItem.alert_id == alert_id,
            OutboxItem.kind == OutboxKind.ALERT,
            col(OutboxItem.state).in_(sorted(TOLD)),
        )
    ).all()
    return [(team, channel, status) for team, channel, status in rows]


def find_id(session: Session, team_id: str, channel_id: str, alert_id: str) -> int | None:
    """The id of the row a channel owes (or owed) under `alert_id`, if any."""
    return session.exec(
        select(OutboxItem.id).where(
            OutboxItem.team_id == team_id, OutboxItem.channel_id == channel_id, OutboxItem.alert_id == alert_id
        )
    ).first()


def add_digest(session: Session, digest: OutboxRow, parts: Sequence[OutboxRow], folded: Sequence[OutboxItem]) -> None:
    """Write a digest and its thread replies (pointing at it) and mark the `folded` rows digested
    into it, in the caller's transaction. A plain insert, not an idempotent one: the fold reads and
    marks its rows in this same transaction, so no second fold of them can get here."""
    parent = OutboxItem.model_validate(digest.values())
    session.add(parent)
    session.flush()  # its id, for the replies and the folded rows
    for part in parts:
        session.add(OutboxItem.model_validate(part.but(parent_id=parent.id).values()))
    # One UPDATE per chunk of ids rather than a flush of every changed object (a burst at enqueue
    # folds a thousand rows in the poll's transaction); the objects in `folded` are not read again.
    for chunk in chunks([row.id for row in folded]):
        session.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id).in_(chunk))
            .values(state=OutboxState.DIGESTED.value, parent_id=parent.id)
            .execution_options(synchronize_session=False)
        )


# --- delivery (bot/pipeline/deliver.py, send.py, recover.py): each call runs in the caller's transaction


@dataclass(frozen=True)
class Due:
    """What one (team, channel) is owed now: how many pending rows are due, and since when the
    oldest of them has been due."""

    team_id: str
    channel_id: str
    count: int
    since: datetime


def due_channels(session: Session, now: datetime) -> list[Due]:
    """Each (team, channel) with pending rows due by `now`: one grouped query, for the delivery
    dispatcher and the per-channel metrics."""
    rows = session.exec(
        select(OutboxItem.team_id, OutboxItem.channel_id, func.count(), func.min(OutboxItem.next_attempt_at))
        .where(OutboxItem.state == OutboxState.PENDING, OutboxItem.next_attempt_at <= now)
        .group_by(col(OutboxItem.team_id), col(OutboxItem.channel_id))
    ).all()
    return [Due(team, channel, int(count), since) for team, channel, count, since in rows]


def due_in(
    session: Session, channel_id: str, now: datetime, limit: int, *, skip_teams: Collection[str] = ()
) -> list[tuple[int, str]]:
    """(id, team) of up to `limit` pending rows of one channel due by `now`, oldest first, whatever
    team they carry (an ops notice and an alert of the same channel), leaving out `skip_teams`."""
    query = select(OutboxItem.id, OutboxItem.team_id).where(
        OutboxItem.channel_id == channel_id, OutboxItem.state == OutboxState.PENDING, OutboxItem.next_attempt_at <= now
    )
    if skip_teams:
        query = query.where(col(OutboxItem.team_id).not_in(sorted(skip_teams)))
    rows = session.exec(query.order_by(col(OutboxItem.id)).limit(limit)).all()
    return [(item_id, team) for item_id, team in rows if item_id is not None]


def crowded(session: Session, now: datetime, more_than: int) -> list[tuple[str, str]]:
    """The (team, channel) pairs with more than `more_than` pending rows due by `now` of the kinds a
    burst folds into one digest (core.outbox.FOLDED)."""
    rows = session.exec(
        select(OutboxItem.team_id, OutboxItem.channel_id)
        .where(
            OutboxItem.state == OutboxState.PENDING,
            col(OutboxItem.kind).in_(sorted(FOLDED)),
            OutboxItem.next_attempt_at <= now,
        )
        .group_by(col(OutboxItem.team_id), col(OutboxItem.channel_id))
        .having(func.count() > more_than)
    ).all()
    return [(team, channel) for team, channel in rows]


def foldable(session: Session, team_id: str, channel_id: str, now: datetime) -> Sequence[OutboxItem]:
    """A channel's pending rows due by `now` of the kinds a burst folds (core.outbox.FOLDED), oldest first."""
    return session.exec(
        select(OutboxItem)
        .where(
            OutboxItem.team_id == team_id,
            OutboxItem.channel_id == channel_id,
            OutboxItem.state == OutboxState.PENDING,
            col(OutboxItem.kind).in_(sorted(FOLDED)),
            OutboxItem.next_attempt_at <= now,
        )
        .order_by(col(OutboxItem.id))
    ).all()


def written_now(
    session: Session, team_id: str, channel_id: str, alert_ids: Sequence[str], now: datetime
) -> Sequence[OutboxItem]:
    """The pending rows of the kinds a burst folds that this transaction wrote at `now` for a channel
    under `alert_ids` (rows that existed before, under the same ids, are left out), oldest first."""
    found: list[OutboxItem] = []
    for chunk in chunks(alert_ids):
        found += session.exec(
            select(OutboxItem).where(
                OutboxItem.team_id == team_id,
                OutboxItem.channel_id == channel_id,
                col(OutboxItem.alert_id).in_(chunk),
                OutboxItem.state == OutboxState.PENDING,
                col(OutboxItem.kind).in_(sorted(FOLDED)),
                OutboxItem.created_at == now,
            )
        ).all()
    return sorted(found, key=lambda r: r.id or 0)


def get(session: Session, item_id: int | None) -> OutboxItem | None:
    """One row by its id."""
    return session.get(OutboxItem, item_id)


def find(session: Session, team_id: str, channel_id: str, alert_id: str) -> OutboxItem | None:
    """The row a channel owes (or owed) under `alert_id`, if any."""
    return session.exec(
        select(OutboxItem).where(
            OutboxItem.team_id == team_id, OutboxItem.channel_id == channel_id, OutboxItem.alert_id == alert_id
        )
    ).first()


def children(session: Session, parent_id: int | None, kinds: Iterable[OutboxKind]) -> Sequence[OutboxItem]:
    """The rows of `kinds` that point at the row `parent_id` (a digest's folded rows or replies), oldest first."""
    return session.exec(
        select(OutboxItem)
        .where(OutboxItem.parent_id == parent_id, col(OutboxItem.kind).in_(sorted(kinds)))
        .order_by(col(OutboxItem.id))
    ).all()


def stuck(session: Session, before: datetime) -> Sequence[OutboxItem]:
    """The rows claimed for sending before `before` and never settled."""
    return session.exec(
        select(OutboxItem).where(OutboxItem.state == OutboxState.SENDING, col(OutboxItem.sending_started_at) <= before)
    ).all()


def sending(session: Session, item_id: int | None) -> OutboxItem | None:
    """The row, if it is still being sent (nothing else settled it meanwhile)."""
    row = session.get(OutboxItem, item_id)
    return row if row is not None and row.state == OutboxState.SENDING else None


def claim(session: Session, row: OutboxItem, *, now: datetime, fence: int, thread_ts: str | None) -> None:
    """pending -> sending: one more attempt, under the lease's `fence`, in the thread `thread_ts` if any."""
    row.state = OutboxState.SENDING.value
    row.sending_started_at = now
    row.attempts += 1
    row.fence = fence
    row.thread_ts = thread_ts
    session.add(row)


def postpone(session: Session, row: OutboxItem, until: datetime) -> None:
    """Leave a pending row for later."""
    row.next_attempt_at = until
    session.add(row)


def mark_sent(session: Session, row: OutboxItem, ts: str) -> None:
    """sending -> sent, as the message `ts` of its channel."""
    row.state = OutboxState.SENT.value
    row.slack_ts = ts
    row.last_error = None
    session.add(row)


def mark_dead(session: Session, row: OutboxItem, error: str) -> None:
    """Never to be posted, and why."""
    row.state = OutboxState.DEAD.value
    row.last_error = error
    session.add(row)


def note_error(session: Session, row: OutboxItem, error: str) -> None:
    """Keep the last error of a row that stays where it is (sending, for recovery to settle)."""
    row.last_error = error
    session.add(row)


def retry(session: Session, row: OutboxItem, *, error: str, at: datetime, refund: bool) -> None:
    """sending -> pending again at `at`; `refund`: the failure was not the row's (a refused token, a
    rate limit), so the attempt does not count."""
    row.last_error = error
    row.state = OutboxState.PENDING.value
    row.next_attempt_at = at
    if refund:
        row.attempts -= 1
    session.add(row)


def requeue(session: Session, row: OutboxItem, now: datetime) -> None:
    """sending -> pending, due now: recovery found no trace of it in Slack."""
    row.state = OutboxState.PENDING.value
    row.next_attempt_at = now
    session.add(row)


def pause_channel(session: Session, row: OutboxItem, code: str) -> None:
    """A channel we can never post to (Slack said `code`): the row and every other pending row of
    the channel dead, its subscriptions paused with the reason."""
    mark_dead(session, row, code)
    for sub in session.exec(
        select(Subscription).where(Subscription.team_id == row.team_id, Subscription.channel_id == row.channel_id)
    ).all():
        sub.paused_reason = code
        session.add(sub)
    for other in session.exec(
        select(OutboxItem).where(
            OutboxItem.team_id == row.team_id,
            OutboxItem.channel_id == row.channel_id,
            OutboxItem.state == OutboxState.PENDING,
        )
    ).all():
        mark_dead(session, other, f"channel paused: {code}")


def insert(session: Session, rows: Iterable[OutboxRow]) -> int:
    """Write `rows`, skipping any whose (team, channel, alert id) is already owed or done: the
    unique key makes every write idempotent. Returns how many were new."""
    values = [r.values() for r in rows]
    return sum(insert_ignore(session, OutboxItem, list(chunk)) for chunk in chunks(values))
