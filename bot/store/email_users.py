"""The cache of `users.lookupByEmail` answers in the store (table `email_user`): what
bot/features/directory.py remembers and reads back; bot/store/owners.py reads the users found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.lookups import LookupOutcome
from bot.store.db import upsert
from bot.store.tables import EmailUser

SCOPE_KEY = "*"  # the email_user row that records missing_scope for a whole workspace


@dataclass(frozen=True)
class Remembered:
    """One remembered answer: for which address, what Slack said, and when."""

    email: str
    outcome: LookupOutcome
    checked_at: datetime


def remembered(session: Session, team: str, emails: Sequence[str]) -> list[Remembered]:
    """The answers remembered for these addresses of `team` (expired ones too)."""
    rows = session.exec(select(EmailUser).where(EmailUser.team_id == team, col(EmailUser.email).in_(emails))).all()
    return [Remembered(r.email, LookupOutcome(r.outcome), r.checked_at) for r in rows]


def remember(
    session: Session, team: str, email: str, user_id: str | None, outcome: LookupOutcome, now: datetime
) -> None:
    """Keep Slack's answer for `email` (replacing the one before)."""
    row = {"team_id": team, "email": email, "user_id": user_id, "outcome": outcome.value, "checked_at": now}
    upsert(session, EmailUser, [row], keys=["team_id", "email"])


def scope_missing(session: Session, since: datetime) -> list[str]:
    """The workspaces whose lookup said `missing_scope` after `since`, sorted."""
    rows = session.exec(
        select(EmailUser.team_id).where(
            EmailUser.email == SCOPE_KEY,
            EmailUser.outcome == LookupOutcome.MISSING_SCOPE.value,
            col(EmailUser.checked_at) > since,
        )
    ).all()
    return sorted(set(rows))
