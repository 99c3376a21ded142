"""Guards that make a paged listing complete or fail: repeated tokens, page caps, deadlines."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from providers.errors import BadResponseError, UnavailableError

MAX_PAGES = 2_000


class PageGuard:
    """Tracks one listing: raises when a token repeats, the page cap is hit or time runs out."""

    def __init__(
        self,
        what: str,
        *,
        deadline_s: float,
        max_pages: int = MAX_PAGES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.max_pages = max_pages
        self.pages = 0
        self._clock = clock
        self._deadline = clock() + deadline_s
        self._seen: set[Hashable] = set()

    def next_page(self, token: Hashable | None) -> None:
        """Call before fetching each page with the token that will be sent (None for the first)."""
        if token is not None:
            if token in self._seen:
                raise BadResponseError(f"{self.what}: page token {token!r} repeated")
            self._seen.add(token)
        self.pages += 1
        if self.pages > self.max_pages:
            raise BadResponseError(f"{self.what}: more than {self.max_pages} pages")
        if self._clock() > self._deadline:
            raise UnavailableError(f"{self.what}: listing deadline exceeded after {self.pages - 1} pages")
