"""What Slack's `users.lookupByEmail` answered for one owner e-mail address, as the cache of
bot/features/directory.py keeps it (bot/store/email_users.py, table `email_user`)."""

from __future__ import annotations

from enum import StrEnum


class LookupOutcome(StrEnum):
    """The `outcome` column of `email_user`: a user was found (`ok`), Slack knows no such address,
    the answer was no usable user (`not_a_user`: no id, or a deleted user), or the app lacks
    `users:read.email` (`missing_scope`, kept once for the whole workspace)."""

    OK = "ok"
    USERS_NOT_FOUND = "users_not_found"
    NOT_A_USER = "not_a_user"
    MISSING_SCOPE = "missing_scope"
