"""Time, injected wherever the code reads it, so tests and the demo control it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class ShiftedClock:
    """Real time plus an offset that can be moved (tests and the demo skip ahead without waiting)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


class FastForward:
    """Monotonic seconds that a sleep skips ahead instead of waiting: real time plus every sleep
    so far. Tests and the demo pace Slack posts with it (the 1 post/s per channel is kept, the
    waiting is not); the fake Slack's rate limit reads the same time, so it sees that pace."""

    def __init__(self) -> None:
        self._skipped = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return time.monotonic() + self._skipped

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._skipped += seconds


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # as `/jobs digest ... weekly <day>` names them
