"""The single-poller lease on a real SQLite store: one holder, takeover after expiry, fencing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.db import Database
from bot.lease import LeaseKeeper
from bot.pipeline.diff import DiffResult
from bot.pipeline.enqueue import LostLease, commit_poll

T0 = datetime(2026, 6, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_one_holder_then_takeover_fences_the_old_one(db: Database) -> None:
    clock = Clock()
    a = LeaseKeeper(db, ttl=timedelta(seconds=30), clock=clock, owner="a")
    b = LeaseKeeper(db, ttl=timedelta(seconds=30), clock=clock, owner="b")
    fence_a = a.renew()
    assert fence_a is not None and b.renew() is None  # the standby idles
    clock.now += timedelta(seconds=20)
    assert a.renew() is not None and b.renew() is None  # renewed in time: still a's
    clock.now += timedelta(seconds=31)  # a stopped renewing (paused, partitioned, killed)
    fence_b = b.renew()
    assert fence_b is not None and fence_b.token == fence_a.token + 1
    # a wakes up: its writes are refused, and it does not get the lease back while b renews
    with pytest.raises(LostLease):
        commit_poll(db, queue="q", started_at=clock.now, result=DiffResult([], []), now=clock.now, fence=fence_a)
    assert a.renew() is None
    commit_poll(db, queue="q", started_at=clock.now, result=DiffResult([], []), now=clock.now, fence=fence_b)


def test_release_lets_a_standby_take_over_at_once(db: Database) -> None:
    clock = Clock()
    a = LeaseKeeper(db, clock=clock, owner="a")
    b = LeaseKeeper(db, clock=clock, owner="b")
    assert a.renew() is not None
    a.release()
    assert b.renew() is not None and a.fence() is None
