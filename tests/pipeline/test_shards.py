"""Sharded polling's claims on a real store: each scope held by one worker, shares, takeover, fencing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.pipeline.diff import DiffResult
from bot.pipeline.enqueue import PollCommit, commit_poll
from bot.store.db import Database
from bot.store.lease import LostLease
from bot.store.shards import ShardKeeper, shard_name
from bot.store.tables import Lease

T0 = datetime(2026, 6, 1, tzinfo=UTC)
TTL = timedelta(seconds=10)
SCOPES = [f"q{i:02d}" for i in range(60)]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def keepers(db: Database, clock: Clock, *names: str) -> list[ShardKeeper]:
    return [ShardKeeper(db, ttl=TTL, clock=clock, owner=name) for name in names]


def settle(keepers: list[ShardKeeper], rounds: int = 3) -> list[set[str]]:
    held: list[set[str]] = []
    for _ in range(rounds):
        held = [set(k.renew(SCOPES)) for k in keepers]
    return held


def assert_partition(held: list[set[str]]) -> None:
    seen = [scope for h in held for scope in h]
    assert sorted(seen) == SCOPES, "every scope held by exactly one worker"


def test_three_workers_each_hold_a_third(db: Database) -> None:
    clock = Clock()
    held = settle(keepers(db, clock, "a", "b", "c"))
    assert_partition(held)
    assert [len(h) for h in held] == [20, 20, 20]


def test_a_worker_that_joins_takes_its_share(db: Database) -> None:
    clock = Clock()
    a, b = keepers(db, clock, "a", "b")
    assert len(a.renew(SCOPES)) == 60  # alone: everything
    held = settle([a, b])
    assert_partition(held)
    assert [len(h) for h in held] == [30, 30]
    (c,) = keepers(db, clock, "c")
    held = settle([a, b, c])
    assert_partition(held)
    assert [len(h) for h in held] == [20, 20, 20]


def test_a_dead_worker_s_scopes_are_taken_after_the_ttl_with_new_fences(db: Database) -> None:
    clock = Clock()
    a, b, c = keepers(db, clock, "a", "b", "c")
    settle([a, b, c])
    dead = {scope: c.fence(scope) for scope in c.held()}
    clock.now += timedelta(seconds=3)
    assert [len(k.renew(SCOPES)) for k in (a, b)] == [20, 20]  # c has not expired yet
    clock.now += TTL  # c stopped renewing (kill -9, another host)
    held = settle([a, b], rounds=1)
    assert_partition(held)
    assert [len(h) for h in held] == [30, 30]
    for scope, fence in dead.items():
        assert fence is not None
        new = a.fence(scope) or b.fence(scope)
        assert new is not None and new.token == fence.token + 1
    scope, fence = next(iter(dead.items()))
    assert fence is not None
    with pytest.raises(LostLease):  # the dead worker's poll in flight cannot commit
        commit_poll(db, empty(scope, clock.now), fence=fence)
    commit_poll(db, empty(scope, clock.now), fence=a.fence(scope) or b.fence(scope))


def test_release_hands_the_scopes_over_at_once(db: Database) -> None:
    clock = Clock()
    a, b = keepers(db, clock, "a", "b")
    settle([a, b])
    b.release()
    assert b.held() == set()
    assert len(a.renew(SCOPES)) == 60


def test_scopes_added_or_removed_between_renewals(db: Database) -> None:
    """New scopes get their rows at the next renewal; a scope no longer wanted (its queue removed) is
    not renewed and expires, and a renewal leaves the live rows of other workers untouched."""
    clock = Clock()
    a, b = keepers(db, clock, "a", "b")
    assert set(a.renew(SCOPES[:30])) == set(SCOPES[:30])
    assert set(a.renew(SCOPES)) == set(SCOPES)  # alone: the 30 new ones too
    assert set(b.renew(SCOPES)) == set()  # everything held and live
    clock.now += timedelta(seconds=3)
    assert len(a.renew(SCOPES[1:])) == 30  # q00 removed from a's list: dropped, and its share is 30 of 59
    assert "q00" not in a.held()
    assert len(b.renew(SCOPES)) == 29  # what a gave up; q00 is still a's until its expiry
    clock.now += TTL - timedelta(seconds=2)  # q00 expired (not renewed since T0), a's others not
    assert len(b.renew(SCOPES)) == 30  # b takes q00
    with db.read() as session:
        rows = {r.name: r for r in session.exec(select(Lease).where(col(Lease.name).startswith("shard:"))).all()}
    assert rows[shard_name("q00")].owner == "b"
    held = {name for name, row in rows.items() if row.expires_at > clock.now}
    assert held == {shard_name(s) for s in a.held() | b.held()}
    assert a.held().isdisjoint(b.held())


def empty(queue: str, now: datetime) -> PollCommit:
    return PollCommit(queue=queue, started_at=now, result=DiffResult([], []), now=now)
