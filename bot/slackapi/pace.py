"""How fast one channel (or one workspace's lookups) may be sent to: a token bucket.

Slack allows about one chat.postMessage per second per channel, with short bursts, and asks a client
that was rate limited to wait for the Retry-After it gives (docs/reliability.md §Rate limits and Retry-After).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Pace:
    """A token bucket: `rate` posts per second with a burst of `burst`."""

    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, now: float) -> float:
        """Seconds to wait before the next post; takes the token."""
        with self.lock:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate) if self.stamp else self.burst
            self.stamp = now
            self.tokens -= 1
            return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def ready_in(self, now: float) -> float:
        """Seconds until the next post may go (0: now), without taking a token."""
        with self.lock:
            if not self.stamp:
                return 0.0
            tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def hold(self, now: float, seconds: float) -> None:
        """No token until `seconds` from now (a Retry-After)."""
        with self.lock:
            self.tokens = min(self.tokens, -seconds * self.rate)
            self.stamp = now
