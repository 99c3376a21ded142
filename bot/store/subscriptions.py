"""Subscriptions in the store: rows in, `Subscribed` values out, and the one place that turns a
filter or quiet hours into columns and back (bot/core/subscriptions.py)."""

from __future__ import annotations

from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.core.quiet import QuietHours
from bot.core.subscriptions import Subscribed, SubscriptionFilter, SubscriptionSource
from bot.store.tables import Subscription


def filter_of(row: Subscription) -> SubscriptionFilter:
    """The row's filter, parsed from its columns."""
    return SubscriptionFilter.from_columns(
        statuses=row.statuses,
        match=row.match,
        causes=row.causes,
        owner=row.owner,
        recovery=row.recovery,
        follow_up=row.follow_up,
    )


def quiet_of(row: Subscription) -> QuietHours | None:
    """The row's quiet hours, or None."""
    return QuietHours.from_columns(row.quiet_start, row.quiet_end, row.quiet_tz, row.quiet_all)


def subscribed(row: Subscription) -> Subscribed:
    """The row as a value."""
    return Subscribed(
        id=row.id or 0,
        team_id=row.team_id,
        channel_id=row.channel_id,
        queue=row.queue,
        filter=filter_of(row),
        quiet=quiet_of(row),
        paused_reason=row.paused_reason,
        source=SubscriptionSource(row.source),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def set_filter(row: Subscription, new: SubscriptionFilter) -> None:
    """Write `new` into the row's filter columns."""
    row.statuses = new.statuses_column
    row.match = new.match
    row.causes = ",".join(new.causes)
    row.owner = new.owner
    row.recovery = new.recovery
    row.follow_up = new.follow_up


def set_quiet(row: Subscription, hours: QuietHours | None) -> None:
    """Write `hours` (None: no quiet hours) into the row's quiet columns."""
    row.quiet_start, row.quiet_end, row.quiet_tz, row.quiet_all = (
        hours.columns() if hours is not None else (None, None, None, False)
    )


def for_queue(session: Session, queue: str) -> list[Subscribed]:
    """Every subscription to `queue`, paused ones too, oldest first."""
    rows = session.exec(select(Subscription).where(Subscription.queue == queue).order_by(col(Subscription.id))).all()
    return [subscribed(r) for r in rows]


def _of(team_id: str, channel_id: str, queue: str) -> SelectOfScalar[Subscription]:
    return select(Subscription).where(
        Subscription.team_id == team_id, Subscription.channel_id == channel_id, Subscription.queue == queue
    )


def of_channel(session: Session, team_id: str, channel_id: str, queue: str) -> Subscribed | None:
    """The channel's subscription to `queue`, if any."""
    row = session.exec(_of(team_id, channel_id, queue)).first()
    return None if row is None else subscribed(row)


def of_team(session: Session, team_id: str, channel_id: str | None) -> list[Subscribed]:
    """A channel's subscriptions (or, with channel_id None, every one of the team), by channel then queue."""
    stmt = select(Subscription).where(Subscription.team_id == team_id)
    if channel_id is not None:
        stmt = stmt.where(Subscription.channel_id == channel_id)
    rows = session.exec(stmt.order_by(col(Subscription.channel_id), col(Subscription.queue))).all()
    return [subscribed(r) for r in rows]


def every(session: Session) -> list[Subscribed]:
    """Every subscription of every workspace."""
    return [subscribed(r) for r in session.exec(select(Subscription)).all()]


def counts(session: Session, team_id: str) -> dict[str, int]:
    """Queue -> how many of the team's channels subscribe to it."""
    found = session.exec(
        select(Subscription.queue, func.count())
        .where(Subscription.team_id == team_id)
        .group_by(col(Subscription.queue))
    ).all()
    return {queue: int(n) for queue, n in found}


def save(session: Session, sub: Subscribed) -> Subscribed:
    """Write `sub`: a new row when its id is 0 (with its team, channel, queue, creator and creation
    time), else its filter, quiet hours, pause and source over the stored row; the stored value back."""
    row = session.get(Subscription, sub.id) if sub.id else None
    if row is None:
        assert sub.created_at is not None, "a new subscription says when it was made"
        row = Subscription(
            team_id=sub.team_id,
            channel_id=sub.channel_id,
            queue=sub.queue,
            created_by=sub.created_by,
            created_at=sub.created_at,
        )
    set_filter(row, sub.filter)
    set_quiet(row, sub.quiet)
    row.paused_reason = sub.paused_reason
    row.source = sub.source.value
    session.add(row)
    session.flush()
    return subscribed(row)


def remove(session: Session, sub_id: int) -> None:
    """Delete the subscription `sub_id`."""
    row = session.get(Subscription, sub_id)
    if row is not None:
        session.delete(row)
