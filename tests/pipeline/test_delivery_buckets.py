"""Sharded delivery on a real store: the delivery keys' buckets, shared by the workers with the polling
shards' machinery, and the fence of a key's bucket in every claim and settle of its rows: a worker
whose bucket was taken can neither claim nor settle, and the new holder recovers what it left."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlmodel import select

from bot.core.clock import ShiftedClock
from bot.core.outbox import OutboxRow
from bot.pipeline.buckets import BUCKETS, PREFIX, Buckets, all_buckets, bucket_of
from bot.pipeline.deliver import Deliverer, Stats
from bot.sim.slack import FakeSlack
from bot.store import outbox
from bot.store.db import Database
from bot.store.lease import LostLease
from bot.store.shards import ShardKeeper
from bot.store.tables import OutboxItem
from providers import Job, JobStatus
from tests.conftest import TEAM, TOKEN

TTL = timedelta(seconds=10)
QUEUES = [f"q{i:02d}" for i in range(12)]


def keeper(db: Database, clock: ShiftedClock, owner: str, prefix: str = PREFIX) -> ShardKeeper:
    return ShardKeeper(db, ttl=TTL, clock=clock, owner=owner, prefix=prefix)


def deliverer(db: Database, slack: FakeSlack, clock: ShiftedClock, owner: str) -> Deliverer:
    client = WebClient(token=TOKEN, base_url=slack.api_url + "/", retry_handlers=[])
    d = Deliverer(db, lambda _team: client, clock=clock)
    d.shard(Buckets(keeper(db, clock, owner)))
    return d


def notices(db: Database, channel: str, count: int, clock: ShiftedClock) -> None:
    rows = [
        OutboxRow.notice(f"{channel}-{i}", f"{channel} {i}", team_id=TEAM, channel_id=channel, queue="q", now=clock())
        for i in range(count)
    ]
    with db.write() as session:
        outbox.insert(session, rows)


def alerts(db: Database, channel: str, count: int, clock: ShiftedClock) -> None:
    jobs = [
        Job(queue="q", id=f"j{i}", name=f"j{i}", status=JobStatus.FAILED, native_status="Failed") for i in range(count)
    ]
    rows = [
        OutboxRow.alert(f"{channel}-j{i}", job, JobStatus.RUNNING, team_id=TEAM, channel_id=channel, now=clock())
        for i, job in enumerate(jobs)
    ]
    with db.write() as session:
        outbox.insert(session, rows)


def ids(db: Database, channel: str) -> list[int]:
    with db.read() as session:
        return [r.id for r in session.exec(select(OutboxItem).where(OutboxItem.channel_id == channel)).all() if r.id]


def states(db: Database) -> Counter[str]:
    with db.read() as session:
        return Counter(session.exec(select(OutboxItem.state)).all())


def until(done: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.02)


def test_a_key_s_bucket_is_stable_and_the_keys_spread() -> None:
    """CRC-32, not Python's salted hash(): the same bucket in every process and version."""
    assert bucket_of("C0123456789") == "50"
    assert bucket_of("U0001") == "30"
    assert all_buckets() == [f"{n:02d}" for n in range(BUCKETS)]
    spread = Counter(bucket_of(f"C{n:04d}") for n in range(3000))
    assert len(spread) == BUCKETS and max(spread.values()) < 2 * 3000 / BUCKETS


def test_workers_share_the_buckets_and_one_membership_with_the_polling_shards(db: Database) -> None:
    clock = ShiftedClock()
    queues = [keeper(db, clock, name, prefix="shard:") for name in ("a", "b", "c")]
    buckets = [keeper(db, clock, name) for name in ("a", "b", "c")]
    held: list[set[str]] = []
    for _ in range(3):
        for k in queues:
            k.renew(QUEUES)
        held = [set(k.renew(all_buckets())) for k in buckets]
    assert sorted(b for h in held for b in h) == all_buckets(), "every bucket held by exactly one worker"
    assert sorted(len(h) for h in held) == [20, 22, 22]  # ceil(64 / 3): three members, not six
    assert sorted(len(k.held()) for k in queues) == [4, 4, 4]
    assert all(k.fence(s) is None for k in queues for s in all_buckets()), "a prefix's keeper holds only its own"


def test_a_worker_whose_bucket_was_taken_can_neither_claim_nor_fold(db: Database, slack: FakeSlack) -> None:
    clock = ShiftedClock()
    a, b = deliverer(db, slack, clock, "a"), deliverer(db, slack, clock, "b")
    assert a.buckets is not None and b.buckets is not None
    a.buckets.renew()
    assert len(a.buckets.held()) == BUCKETS  # alone: every bucket
    alerts(db, "C1", 3, clock)
    fence = a.buckets.fence("C1")
    assert fence is not None
    clock.offset += TTL + timedelta(seconds=1)  # a is paused past its TTL; b takes everything
    b.buckets.renew()
    taken = b.buckets.fence("C1")
    assert taken is not None and taken.token == fence.token + 1
    with pytest.raises(LostLease):
        a.sender.send(ids(db, "C1")[0], Stats(), fence)
    a.digest_threshold = b.digest_threshold = 2
    a.fold_digests(a._share(sharded=True))  # a still believes it holds C1's bucket: the fold is refused
    assert states(db) == Counter({"pending": 3})
    b.dispatch()  # b folds the three into one digest, and posts it
    b.drainers.wait()
    assert states(db)["digested"] == 3, states(db)
    assert slack.posts("C1") and not [
        p for p in slack.posts("C1") if "j0" in str(p.get("text")) and not p.get("thread_ts")
    ]
    b.close()
    a.close()


def test_a_settle_after_a_takeover_is_refused_and_the_new_holder_recovers_the_row(
    db: Database, slack: FakeSlack
) -> None:
    """a posts, is paused past its TTL while Slack answers, and cannot settle; b's recovery finds the
    alert id in the channel's history and settles it as sent: posted once."""
    clock = ShiftedClock()
    a, b = deliverer(db, slack, clock, "a"), deliverer(db, slack, clock, "b")
    assert a.buckets is not None and b.buckets is not None
    a.buckets.renew()
    notices(db, "C1", 1, clock)
    fence = a.buckets.fence("C1")
    slack.slow["C1"] = 1.0
    refused: list[BaseException] = []

    def send() -> None:
        try:
            a.sender.send(ids(db, "C1")[0], Stats(), fence)
        except LostLease as err:
            refused.append(err)

    sending = threading.Thread(target=send)
    sending.start()
    until(lambda: slack.count("chat.postMessage") == 1, 5)  # claimed and in flight
    clock.offset += TTL + timedelta(seconds=1)
    b.buckets.renew()
    sending.join()
    assert refused, "the settle checked the bucket's fence"
    assert states(db) == Counter({"sending": 1})
    b.dispatch()  # not stuck long enough yet: left alone
    b.drainers.wait()
    assert states(db) == Counter({"sending": 1})
    clock.offset += b.recovery_after
    b.buckets.renew()
    b.dispatch()
    b.drainers.wait()
    assert states(db) == Counter({"sent": 1})
    assert slack.alert_ids() == ["C1-0"]
    a.close()
    b.close()


def test_each_worker_drains_only_the_channels_of_its_buckets(db: Database, slack: FakeSlack) -> None:
    clock = ShiftedClock()
    a, b = deliverer(db, slack, clock, "a"), deliverer(db, slack, clock, "b")
    assert a.buckets is not None and b.buckets is not None
    for _ in range(2):
        a.buckets.renew()
        b.buckets.renew()
    assert len(a.buckets.held()) == len(b.buckets.held()) == BUCKETS // 2
    channels = [f"C{n:03d}" for n in range(20)]
    for channel in channels:
        notices(db, channel, 2, clock)
    a.dispatch()
    a.drainers.wait()
    mine = {c for c in channels if bucket_of(c) in a.buckets.held()}
    assert 0 < len(mine) < len(channels)
    assert {p["channel"] for p in slack.posts()} == mine
    b.dispatch()
    b.drainers.wait()
    assert sorted(slack.alert_ids()) == sorted(f"{c}-{i}" for c in channels for i in range(2))
    a.close()
    b.close()
