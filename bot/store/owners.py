"""Owner values -> Slack users, as far as the store knows: `[owners]` and the cached answers of
`users.lookupByEmail` (bot/features/directory.py asks Slack; these only read)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlmodel import Session, col, select

from bot.core.ids import USER_RE
from bot.core.lookups import LookupOutcome
from bot.core.owners import email_of, owned_by, slack_user
from bot.store.tables import EmailUser


def known_users(session: Session, team: str, owners_: Iterable[str], table: Mapping[str, str]) -> dict[str, str]:
    """Owner value -> Slack user id, from `[owners]` or, for e-mail addresses, from what
    `users.lookupByEmail` answered before (bot/features/directory.py); asks Slack nothing."""
    found: dict[str, str] = {}
    emails: dict[str, str] = {}
    for owner in set(owners_):
        user = slack_user(owner, table)
        if user is not None:
            found[owner] = user
        elif (email := email_of(owner, table)) is not None:
            emails[email] = owner
    if emails:
        rows = session.exec(
            select(EmailUser).where(
                EmailUser.team_id == team,
                EmailUser.outcome == LookupOutcome.OK.value,
                col(EmailUser.email).in_(list(emails)),
            )
        ).all()
        for row in rows:
            if row.user_id and USER_RE.match(row.user_id):
                found[emails[row.email]] = row.user_id
    return found


def owned_values(session: Session, team: str, user: str, table: Mapping[str, str]) -> set[str]:
    """The owner values (lower case) that name `user`: `[owners]` keys and looked-up e-mail addresses."""
    looked_up = session.exec(
        select(EmailUser.email).where(
            EmailUser.team_id == team, EmailUser.user_id == user, EmailUser.outcome == LookupOutcome.OK.value
        )
    ).all()
    return owned_by(user, table) | {e for e in looked_up if e not in table}
