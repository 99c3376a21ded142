"""What a user asked for and cannot have, said in words the reply shows as they are:

    ServiceError          the request cannot be done (unknown queue, a file-managed subscription, ...)
    ├── NotAllowed        the person or channel may not do this (bot/features/access.py)
    └── NoSuchJob         no job of the queue answers to what was typed (bot/store/refs.py)

Provider failures are providers.errors.ProviderError; a bad command line is
bot/slack/grammar.py UsageError.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be served; the message is safe to show the user."""


class NotAllowed(ServiceError):
    """The user may not do this."""


class NoSuchJob(ServiceError):
    """No job of the queue answers to the reference."""

    def __init__(self, queue: str, ref: str) -> None:
        super().__init__(f"no job `{ref[:100]}` in queue `{queue}` (try `/jobs list {queue}`)")
        self.queue = queue
        self.ref = ref
