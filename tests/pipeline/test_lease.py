"""The single-poller lease on a real SQLite store: one holder, takeover after expiry, fencing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from bot.pipeline.diff import DiffResult
from bot.pipeline.enqueue import PollCommit, commit_poll
from bot.store.db import Database
from bot.store.lease import LeaseKeeper, LostLease, machine_identity, process_owner

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
        commit_poll(
            db, PollCommit(queue="q", started_at=clock.now, result=DiffResult([], []), now=clock.now), fence=fence_a
        )
    assert a.renew() is None
    commit_poll(
        db, PollCommit(queue="q", started_at=clock.now, result=DiffResult([], []), now=clock.now), fence=fence_b
    )


def test_release_lets_a_standby_take_over_at_once(db: Database) -> None:
    clock = Clock()
    a = LeaseKeeper(db, clock=clock, owner="a")
    b = LeaseKeeper(db, clock=clock, owner="b")
    assert a.renew() is not None
    a.release()
    assert b.renew() is not None and a.fence() is None


def dead_pid() -> int:
    """The pid of a process of this machine that has certainly ended (exited and reaped)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_a_dead_process_of_this_machine_loses_the_lease_at_once(db: Database) -> None:
    """After kill -9 the restarted process need not wait out the TTL: the holder's pid is gone."""
    clock = Clock()
    dead = LeaseKeeper(db, ttl=timedelta(seconds=30), clock=clock, owner=process_owner(dead_pid()))
    fence_dead = dead.renew()
    assert fence_dead is not None
    successor = LeaseKeeper(db, ttl=timedelta(seconds=30), clock=clock)
    fence = successor.renew()  # no time has passed: the lease has not expired
    assert fence is not None and fence.token == fence_dead.token + 1
    with pytest.raises(LostLease):  # the dead holder's fence never writes again
        commit_poll(
            db, PollCommit(queue="q", started_at=clock.now, result=DiffResult([], []), now=clock.now), fence=fence_dead
        )
    commit_poll(db, empty(clock.now), fence=fence)
    assert dead.renew() is None


@pytest.mark.parametrize(
    ("owner", "taken_at_once"),
    [
        ("{host}:{dead}:0badf00d:{machine}", True),  # a process of this machine that has ended
        ("{host}:{self}:0badf00d:{machine}", False),  # another keeper of this very process
        ("{host}:{parent}:0badf00d:{machine}", False),  # a live process of this machine
        ("elsewhere:{dead}:0badf00d:{machine}", False),  # another host (maybe with its own pid namespace)
        ("{host}:{dead}:0badf00d:000000000000", False),  # this hostname, another boot or pid namespace
        ("{host}:{dead}:0badf00d:", False),  # no machine identity known
        ("{host}:{dead}:0badf00d", False),  # written before owners named their machine
        ("{host}:0:0badf00d:{machine}", False),
        ("{host}:-1:0badf00d:{machine}", False),
        ("{host}:x:0badf00d:{machine}", False),
        ("{host}:99999999999999999999:0badf00d:{machine}", False),
        ("garbage", False),
    ],
)
def test_only_a_dead_process_of_this_machine_loses_the_lease_before_its_ttl(
    db: Database, owner: str, taken_at_once: bool
) -> None:
    """Anything not known to be dead here (alive, a recycled pid, elsewhere, unknown) waits for the TTL."""
    clock = Clock()
    pids = {"dead": dead_pid(), "self": os.getpid(), "parent": os.getppid()}
    text = owner.format(host=socket.gethostname(), machine=machine_identity(), **pids)
    assert LeaseKeeper(db, clock=clock, owner=text).renew() is not None
    successor = LeaseKeeper(db, clock=clock)
    assert (successor.renew() is not None) is taken_at_once
    clock.now += timedelta(seconds=31)
    assert successor.renew() is not None


def test_owner_names_host_pid_and_machine() -> None:
    host, pid, token, machine = process_owner().rsplit(":", 3)
    assert host == socket.gethostname() and pid == str(os.getpid()) and len(token) == 8
    assert machine == machine_identity() and (machine == "" or len(machine) == 12)


def empty(now: datetime) -> PollCommit:
    """A poll of queue q that found nothing."""
    return PollCommit(queue="q", started_at=now, result=DiffResult([], []), now=now)
