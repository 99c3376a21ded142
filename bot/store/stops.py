"""Stop requests in the store: the `stop_request` row written before a provider is asked to stop a
job, and settled with its answer (bot/features/stopping.py; the states in bot/core/stops.py)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.core.stops import StopAction, StopRequested, StopState
from bot.store.tables import StopRequest


def _request(queue: str, job_id: str, action: StopAction) -> SelectOfScalar[StopRequest]:
    return select(StopRequest).where(
        StopRequest.queue == queue, StopRequest.job_id == job_id, col(StopRequest.action) == action.value
    )


def _value(row: StopRequest) -> StopRequested:
    return StopRequested(
        id=row.id or 0,
        queue=row.queue,
        job_id=row.job_id,
        action=StopAction(row.action),
        user_id=row.user_id,
        state=StopState(row.state),
        requested_at=row.requested_at,
    )


def find(session: Session, queue: str, job_id: str, action: StopAction) -> StopRequested | None:
    """The request of this job and action, if any."""
    row = session.exec(_request(queue, job_id, action)).first()
    return None if row is None else _value(row)


def ask(
    session: Session,
    *,
    queue: str,
    job_id: str,
    action: StopAction,
    team_id: str,
    channel_id: str,
    user_id: str,
    trigger_id: str,
    reason: str,
    now: datetime,
) -> StopRequested | None:
    """Record the request as `requested` at `now` (a new row, or the job's earlier one reused) and
    return None; or, when the earlier request still stands (`StopRequested.stands`), return it and
    write nothing. A request of the same job committed meanwhile raises Conflict at commit."""
    row = session.exec(_request(queue, job_id, action)).first()
    if row is not None and _value(row).stands(now):
        return _value(row)
    if row is None:
        row = StopRequest(
            queue=queue,
            job_id=job_id,
            action=action.value,
            team_id=team_id,
            channel_id=channel_id,
            user_id=user_id,
            requested_at=now,
        )
    row.team_id, row.channel_id, row.user_id = team_id, channel_id, user_id
    row.trigger_id, row.reason = trigger_id, reason
    row.state, row.answer, row.requested_at, row.settled_at = StopState.REQUESTED.value, "", now, None
    session.add(row)
    return None


def settle(
    session: Session, queue: str, job_id: str, action: StopAction, *, state: StopState, answer: str, now: datetime
) -> StopRequested | None:
    """Keep the provider's answer (or its silence) on the request; None when there is no request."""
    row = session.exec(_request(queue, job_id, action)).first()
    if row is None:
        return None
    row.state, row.answer, row.settled_at = state.value, answer, now
    session.add(row)
    return _value(row)
