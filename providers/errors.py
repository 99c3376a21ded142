"""Errors an adapter may raise; each says whether the next poll may succeed.

    ProviderError
    ├── AuthError          credentials missing or refused, clock skew  (not retryable)
    │   └── AccessDeniedError  credentials fine, the action not allowed (not retryable)
    ├── ThrottledError     429 / throttling codes; carries retry_after (retryable)
    ├── UnavailableError   timeouts, connection errors, 5xx            (retryable)
    ├── BadResponseError   malformed body, HTML with 200, paging loop  (retryable)
    ├── NotFoundError      the job (or route) does not exist            (not retryable)
    └── ConflictError      the job is in a state the action refuses    (not retryable)

A listing either returns every job or raises one of these: never a partial list.
An action (stopping a job) is never retried automatically; its errors say in plain words
what the provider answered, so they can be shown to the person who asked.

A failed poll is retried at the next interval whatever the error. `retryable` says whether
waiting can help: a retryable failure is announced to operators only after `failure_threshold`
polls in a row (a passing outage stays quiet); one that is not (refused credentials, a listing
that does not exist) will not pass by itself, so it is announced at once, with `remedy`: what
to check.
"""

from __future__ import annotations

import re
from typing import ClassVar

# Words a provider uses when it refuses an action because of the job's state (SageMaker:
# "The request was rejected because the training job is in status Stopped.").
_STATE_WORDS = re.compile(r"status|state|already|terminal|finished|complete|cannot be (?:stopped|cancel)", re.I)


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


class AccessDeniedError(AuthError):
    """The credentials are valid but may not perform this action (AccessDenied, HTTP 403)."""


class ConflictError(ProviderError):
    """The provider refused the action because of the job's state (already stopping or finished)."""

    retryable = False


def mentions_state(text: str) -> bool:
    """True when a provider's refusal talks about the job's state (a conflict, not a bad request)."""
    return bool(_STATE_WORDS.search(text))
