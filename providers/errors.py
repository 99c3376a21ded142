"""Errors an adapter may raise; each says whether the next poll may succeed.

    ProviderError
    ├── AuthError          credentials missing or refused, clock skew  (not retryable)
    ├── ThrottledError     429 / throttling codes; carries retry_after (retryable)
    ├── UnavailableError   timeouts, connection errors, 5xx            (retryable)
    ├── BadResponseError   malformed body, HTML with 200, paging loop  (retryable)
    └── NotFoundError      the job (or route) does not exist            (not retryable)

A listing either returns every job or raises one of these: never a partial list.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every adapter error."""

    retryable: bool = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(ProviderError):
    """The provider refused our credentials or they are missing."""

    retryable = False


class ThrottledError(ProviderError):
    """The provider asked us to slow down."""


class UnavailableError(ProviderError):
    """The provider could not be reached or failed on its side."""


class BadResponseError(ProviderError):
    """The provider answered with something we cannot trust as a complete listing."""


class NotFoundError(ProviderError):
    """The thing asked for does not exist (a detail call for a deleted job)."""

    retryable = False
