"""The audit trail in the store: one `audit` row per attempted change (bot/features/access.py
says what; bot/core/audit.py names the outcomes)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.core.audit import AuditOutcome
from bot.store.tables import AuditEntry


def add(
    session: Session,
    *,
    team_id: str,
    user_id: str,
    channel_id: str,
    action: str,
    queue: str,
    outcome: AuditOutcome,
    detail: str,
    trigger_id: str,
    at: datetime,
) -> None:
    """Add one audit row in the caller's transaction (a change and its record commit together)."""
    session.add(
        AuditEntry(
            team_id=team_id,
            user_id=user_id,
            channel_id=channel_id,
            action=action,
            queue=queue,
            outcome=outcome.value,
            detail=detail,
            trigger_id=trigger_id,
            at=at,
        )
    )
