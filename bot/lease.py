"""The single-poller lease: a row with an owner, an expiry and a fencing counter."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from bot.clock import Clock, utcnow
from bot.db import Database
from bot.pipeline.enqueue import Fence
from bot.tables import Lease


class LeaseKeeper:
    """Acquires and renews the lease; `fence()` is the proof pipeline writes check."""

    def __init__(
        self,
        db: Database,
        *,
        name: str = "poller",
        ttl: timedelta = timedelta(seconds=30),
        clock: Clock = utcnow,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._fence: Fence | None = None

    def renew(self) -> Fence | None:
        """Take the lease if free or expired, extend it if ours; None while another owner holds it."""
        now = self.clock()
        with self.db.write() as session:
            lease = session.get(Lease, self.name, with_for_update=True)  # held until commit
            if lease is None:
                lease = Lease(name=self.name, owner=self.owner, expires_at=now + self.ttl, fence=1)
            elif lease.owner == self.owner and (self._fence is None or self._fence.token == lease.fence):
                lease.expires_at = now + self.ttl
            elif lease.expires_at < now:
                lease.owner = self.owner
                lease.fence += 1
                lease.expires_at = now + self.ttl
            else:
                self._fence = None
                return None
            session.add(lease)
            self._fence = Fence(self.name, self.owner, lease.fence)
        return self._fence

    def fence(self) -> Fence | None:
        """The fence from the last successful renewal (None when not holding the lease)."""
        return self._fence

    def release(self) -> None:
        """Give the lease up at a clean shutdown so a successor need not wait for expiry."""
        if self._fence is None:
            return
        with self.db.write() as session:
            lease = session.get(Lease, self.name, with_for_update=True)
            if lease is not None and lease.owner == self.owner and lease.fence == self._fence.token:
                lease.expires_at = self.clock() - timedelta(seconds=1)
                session.add(lease)
        self._fence = None
