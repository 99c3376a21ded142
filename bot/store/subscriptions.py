"""Subscriptions in the store: rows in, `Subscribed` values out, and the one place that turns a
filter or quiet hours into columns and back (bot/core/subscriptions.py)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.core.quiet import QuietHours
from bot.core.subscriptions import Subscribed, SubscriptionFilter, SubscriptionSource
from bot.store.tables import Subscription


def filter_of(row: Subscription) -> SubscriptionFilter:
    """The row's filter, parsed from its columns."""
    return SubscriptionFilter.from_columns(statuses=row.statuses, match=row.match, causes=row.causes, owner=row.owner)


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


def set_quiet(row: Subscription, hours: QuietHours | None) -> None:
    """Write `hours` (None: no quiet hours) into the row's quiet columns."""
    row.quiet_start, row.quiet_end, row.quiet_tz, row.quiet_all = (
        hours.columns() if hours is not None else (None, None, None, False)
    )


def for_queue(session: Session, queue: str) -> list[Subscribed]:
    """Every subscription to `queue`, paused ones too, oldest first."""
    rows = session.exec(select(Subscription).where(Subscription.queue == queue).order_by(col(Subscription.id))).all()
    return [subscribed(r) for r in rows]
