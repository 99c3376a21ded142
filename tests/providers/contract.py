"""The contract every adapter must pass, and the `World` each provider's test module supplies.

A World is a provider's local fake plus the knowledge to drive it: create a job with a native
status, move it, and break the next listing in each of the standard ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from providers import JobSource, JobStatus

# How a fake can refuse the next stop call, and the error the adapter must raise for it.
#   denied    the credentials are valid but may not stop jobs (AccessDenied / 403)
#   throttle  throttled (429 / throttling code); stops are never retried, so once is enough
STOP_REFUSALS = ("denied", "throttle")

# Faults every fake can inject into its next listing. Each must make list_jobs raise a
# ProviderError: never return a partial or empty list.
#   throttle      429/throttling on every attempt until retries run out
#   server        5xx on every attempt
#   html          HTML with status 200
#   malformed     truncated JSON with status 200
#   repeat_token  a page token that repeats (A -> B -> A)
#   auth          credentials refused (must raise AuthError)
FAULTS = ("throttle", "server", "html", "malformed", "repeat_token", "auth")
# A fault of the next detail call (get_job) only: valid JSON lacking or garbling a field the API
# always sends. It must make get_job raise BadResponseError naming the provider and queue.
BAD_DETAIL = "bad_detail"


class World(Protocol):
    """One provider's fake, driven the same way for every adapter."""

    provider: str
    page_size: int  # the adapter's page size: the contract lists more than two pages
    status_cases: Mapping[str, JobStatus]  # native status -> canonical, covering the documented list
    unknown_native: str  # a status string the adapter does not know

    def source(self) -> JobSource:
        """An adapter pointed at the fake, with retries fast enough for tests."""
        ...

    def add(self, name: str, native: str) -> str:
        """Create a job now with this native status; returns the id the adapter reports."""
        ...

    def set(self, job_id: str, native: str) -> None:
        """Move a job to a new native status now."""
        ...

    def fault(self, kind: str) -> None:
        """Break the next listing (see FAULTS), or the next detail call (BAD_DETAIL)."""
        ...

    def close(self) -> None:
        """Stop the fake."""
        ...


class StopWorld(World, Protocol):
    """A World whose provider can stop jobs (every adapter with `stop_job`)."""

    stop_native: str  # a live native status the provider stops
    stop_permission: str  # what an access-denied message must name (the IAM/RAM permission, or role)

    def stops(self) -> int:
        """How many stop calls the fake has received."""
        ...

    def refuse_next_stop(self, kind: str) -> None:
        """Refuse the next stop call (see STOP_REFUSALS)."""
        ...
