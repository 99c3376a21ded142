"""Errors an adapter may raise; each says whether the next poll may succeed.

    ProviderError
    ├── AuthError          credentials missing or refused, clock skew  (not retryable)
    ├── ThrottledError     429 / throttling codes; carries retry_after (retryable)
    ├── UnavailableError   timeouts, connection errors, 5xx            (retryable)
    ├── BadResponseError   malformed body, HTML with 200, paging loop  (retryable)
    └── NotFoundError      the job (or route) does not exist            (not retryable)

A listing either returns every job or raises one of these: never a partial list.

A failed poll is retried at the next interval whatever the error. `retryable` says whether
waiting can help: a retryable failure is announced to operators only after `failure_threshold`
polls in a row (a passing outage stays quiet); one that is not (refused credentials, a listing
that does not exist) will not pass by itself, so it is announced at once, with `remedy`: what
to check.
"""

from __future__ import annotations

from typing import ClassVar


class ProviderError(Exception):
    """Base of every adapter error."""

    retryable: ClassVar[bool] = True
    remedy: ClassVar[str] = ""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(ProviderError):
    """The provider refused our credentials or they are missing."""

    retryable = False
    remedy = (
        "the provider refused the credentials or they are missing. Check the key variables this queue "
        "names (and that they are set where the bot runs), that the key is active and allowed to list "
        "jobs, and that this host's clock is right (signed requests expire within minutes)"
    )


class ThrottledError(ProviderError):
    """The provider asked us to slow down."""


class UnavailableError(ProviderError):
    """The provider could not be reached or failed on its side."""


class BadResponseError(ProviderError):
    """The provider answered with something we cannot trust as a complete listing."""


class NotFoundError(ProviderError):
    """The thing asked for does not exist (a detail call for a deleted job)."""

    retryable = False
    remedy = "the provider says what this queue lists does not exist. Check the queue's endpoint and ids"
