"""The outbox, read and written for the features: what a channel is still owed, and what a change
of its subscription (filters, quiet hours, unsubscribe) does to those rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core import owners
from bot.core.outbox import TOLD, WITHDRAWABLE, WITHDRAWN, OutboxKind, OutboxRow, OutboxState
from bot.core.subscriptions import SubscriptionFilter
from bot.store.db import insert_ignore
from bot.store.owners import known_users
from bot.store.tables import OutboxItem
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
    """Delete the alerts a channel is still owed (pending, or held by a mute) that its subscription as
    it now stands no longer wants (`wanted` None: it unsubscribed); returns how many. Called in the same
    transaction as the change, so the filters decide at delivery too; a row being sent stays.
    `owners_table`: `[owners]`, for an `--owner` filter (with the e-mail lookups already cached)."""
    rows = session.exec(
        select(OutboxItem).where(
            OutboxItem.team_id == team_id,
            OutboxItem.channel_id == channel_id,
            OutboxItem.queue == queue,
            col(OutboxItem.kind).in_(sorted(WITHDRAWN)),
            col(OutboxItem.state).in_(sorted(WITHDRAWABLE)),
        )
    ).all()
    jobs = [(r, Job.model_validate_json(r.payload)) for r in rows]
    users: dict[str, str] = {}
    if wanted is not None and wanted.owner:
        values = {str(j.extra.get(owners.OWNER_KEY) or "") for _, j in jobs} - {""}
        users = known_users(session, team_id, values, owners_table or {})
    unwanted = [
        r
        for r, job in jobs
        if wanted is None or not wanted.wants(job, users.get(str(job.extra.get(owners.OWNER_KEY) or "")))
    ]
    for row in unwanted:
        session.delete(row)
    return len(unwanted)


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
    for row in folded:
        row.state = OutboxState.DIGESTED.value
        row.parent_id = parent.id
        session.add(row)


CHUNK = 500  # rows per statement: SQLite caps bound variables (250,000 since 3.32; 32,766 before)


def insert(session: Session, rows: Iterable[OutboxRow]) -> int:
    """Write `rows`, skipping any whose (team, channel, alert id) is already owed or done: the
    unique key makes every write idempotent. Returns how many were new."""
    values = [r.values() for r in rows]
    return sum(insert_ignore(session, OutboxItem, values[i : i + CHUNK]) for i in range(0, len(values), CHUNK))
