"""Channels never wait for each other: each channel (a DM: the person) is drained on its own,
through the real dispatcher, drainers and Sender against the fake Slack, which can answer one
channel slowly (`FakeSlack.slow`). Waits here are generous bounds on "did not wait for the other
channel" (2 s against the 48 s the slow one takes), not speed targets (bench/delivery.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.core.clock import ShiftedClock, utcnow
from bot.core.outbox import OutboxRow
from bot.sim.modzy import ModzySim
from bot.sim.slack import FakeSlack, Fault
from bot.store import outbox
from bot.store.lease import LeaseKeeper
from bot.store.tables import OutboxItem
from providers import Job, JobStatus
from tests.conftest import TEAM
from tests.harness import Bot, text_of

HEALTHY_WITHIN = 2.0  # seconds: a healthy channel's rows, whatever another channel is doing


@pytest.fixture
def modzy() -> Iterator[ModzySim]:
    sim = ModzySim().start()
    yield sim
    sim.stop()


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim) -> Iterator[Bot]:
    b = subscribed_bot(tmp_path, database_url, slack, modzy)
    yield b
    b.close()


def subscribed_bot(tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim, bot_table: str = "") -> Bot:
    """A bot on the Modzy queue `inference`, which channels C1 and C2 subscribe to, after its baseline."""
    config = f'{bot_table}[[queues]]\nname = "inference"\nprovider = "modzy"\nendpoint_url = "{modzy.url}"\n'
    b = Bot(
        tmp_path,
        slack,
        config,
        env={"MODZY_API_KEY": modzy.api_key},
        database_url=database_url,
        jobwatch_poll_interval=1,
    )
    for channel in ("C1", "C2"):
        assert "Subscribed" in text_of(b.command("subscribe inference", channel=channel))
    b.cycle()  # baseline
    return b


def until(done: Callable[[], bool], seconds: float) -> float:
    """Seconds until `done()` held; fails after `seconds`."""
    started = time.monotonic()
    while not done():
        assert time.monotonic() - started < seconds, "not within the bound"
        time.sleep(0.02)
    return time.monotonic() - started


def notices(bot: Bot, channel: str, count: int, prefix: str) -> None:
    """Owe `channel` `count` operator notices (never folded into a digest), committed now."""
    now = utcnow()
    rows = [
        OutboxRow.notice(f"{prefix}-{i}", f"{prefix} {i}", team_id=TEAM, channel_id=channel, queue="inference", now=now)
        for i in range(count)
    ]
    with bot.runtime.db.write() as session:
        outbox.insert(session, rows)


def dms(bot: Bot, user: str, count: int) -> None:
    """Owe `user` `count` direct messages about a job."""
    now = utcnow()
    with bot.runtime.db.write() as session:
        for i in range(count):
            job = Job(queue="inference", id=f"dm-{i}", name=f"dm-{i}", status=JobStatus.FAILED, native_status="ERROR")
            outbox.insert(session, [OutboxRow.dm(f"dm-{i}", job, None, team_id=TEAM, user_id=user, now=now)])


def ok_polls(bot: Bot) -> float:
    found = bot.runtime.metrics.registry.get_sample_value(
        "jobwatch_polls_total", {"queue": "inference", "outcome": "ok"}
    )
    return found or 0.0


def post_calls(slack: FakeSlack, channel: str) -> int:
    return sum(1 for m, p in slack.calls if m == "chat.postMessage" and p.get("channel") == channel)


def test_a_slow_channel_delays_no_other(bot: Bot, slack: FakeSlack, modzy: ModzySim) -> None:
    """Slack answers C1 in 4 s a post; 12 alerts for each channel: C2's all arrive at once (the
    round that waited for the slowest channel took 33-46 s to reach an idle one)."""
    slack.slow["C1"] = 4.0
    for i in range(12):
        modzy.add(f"model-{i:02d}")
    worker = bot.runtime.worker
    worker.renew()
    worker.poll_all()
    started = time.monotonic()
    worker.dispatch()  # returns at once
    assert time.monotonic() - started < HEALTHY_WITHIN
    until(lambda: len(slack.posts("C2")) == 12, HEALTHY_WITHIN)
    assert len(slack.posts("C1")) <= 1  # still on its first posts
    until(lambda: worker.deliverer.drainers.busy() == {"C1"}, 1)  # C2's drainer ended: nothing due


@pytest.mark.real_pacing
def test_a_new_row_for_an_idle_channel_is_not_behind_a_backlog(
    bot: Bot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """500 notices owed to C1, posted at Slack's 1 a second by the worker's own scheduler: a
    notice committed for C2 meanwhile arrives within a second or two, the queue's 1 s polls go on
    on schedule, and the delivery tick is never skipped as still running."""
    caplog.set_level(logging.WARNING, logger="apscheduler")
    notices(bot, "C1", 500, "backlog")
    worker = bot.runtime.worker
    scheduler = worker.start_background()
    try:
        until(lambda: len(slack.posts("C1")) >= 3, 10)
        polls = ok_polls(bot)
        committed = time.monotonic()
        notices(bot, "C2", 1, "news")
        waited = until(lambda: len(slack.posts("C2")) == 1, HEALTHY_WITHIN + 1)
        time.sleep(max(0.0, 4 - (time.monotonic() - committed)))
        assert ok_polls(bot) >= polls + 2  # the 1 s polls run on schedule
    finally:
        scheduler.shutdown(wait=True)
    assert waited <= HEALTHY_WITHIN
    assert 3 <= len(slack.posts("C1")) < 20 and slack.rejected == 0  # the backlog keeps its pace
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]


@pytest.mark.parametrize("slow", ["C2", "U0WATCHER"])
def test_a_dm_and_a_channel_do_not_wait_for_each_other(bot: Bot, slack: FakeSlack, slow: str) -> None:
    slack.slow[slow] = 4.0
    dms(bot, "U0WATCHER", 3)
    notices(bot, "C2", 3, "ops")
    bot.runtime.worker.dispatch()
    if slow == "C2":
        until(lambda: len(slack.dms("U0WATCHER")) == 3, HEALTHY_WITHIN)
        assert len(slack.posts("C2")) <= 1
    else:
        until(lambda: len(slack.posts("C2")) == 3, HEALTHY_WITHIN)
        assert len(slack.dms("U0WATCHER")) <= 1


def test_retry_after_holds_only_its_channel(bot: Bot, slack: FakeSlack, modzy: ModzySim) -> None:
    slack.script("chat.postMessage", Fault(retry_after=30, channel="C1"))
    for i in range(3):
        modzy.add(f"model-{i}")
    worker = bot.runtime.worker
    worker.renew()
    worker.poll_all()
    worker.dispatch()
    until(lambda: len(slack.posts("C2")) == 3, HEALTHY_WITHIN)
    until(lambda: not worker.deliverer.drainers.busy(), HEALTHY_WITHIN)
    for _ in range(3):  # ticks while C1 waits out its Retry-After: no drainer, no call
        worker.dispatch()
        time.sleep(0.1)
    assert post_calls(slack, "C1") == 1 and slack.posts("C1") == []
    modzy.add("model-late")
    worker.poll_all()
    worker.dispatch()
    until(lambda: len(slack.posts("C2")) == 4, HEALTHY_WITHIN)
    assert post_calls(slack, "C1") == 1


@pytest.mark.real_pacing
def test_a_lost_lease_stops_every_drainer(bot: Bot, slack: FakeSlack) -> None:
    """Another worker takes the lease while two channels drain: nothing more is posted (at most the
    post already in flight in each) and the drainers end."""
    notices(bot, "C1", 30, "one")
    notices(bot, "C2", 30, "two")
    worker = bot.runtime.worker
    worker.renew()
    worker.dispatch()
    until(lambda: len(slack.posts("C1")) >= 3 and len(slack.posts("C2")) >= 3, 10)
    ours = worker.lease
    later = ShiftedClock()
    later.offset = ours.ttl + timedelta(seconds=1)
    assert LeaseKeeper(bot.runtime.db, ttl=ours.ttl, clock=later, owner="standby").renew() is not None
    posted = len(slack.posts())
    until(lambda: not worker.deliverer.drainers.busy(), 3)
    assert len(slack.posts()) <= posted + 2
    time.sleep(1.5)
    worker.dispatch()  # our keeper still believes it holds the lease: every claim is refused
    time.sleep(1.5)
    assert len(slack.posts()) <= posted + 2
    with bot.runtime.db.read() as session:
        states = set(session.exec(select(OutboxItem.state).where(col(OutboxItem.channel_id).in_(["C1", "C2"]))).all())
    assert states <= {"sent", "pending"}  # nothing left claimed by a worker that no longer owns the lease


def test_closing_the_worker_stops_and_joins_the_drainers(bot: Bot, slack: FakeSlack) -> None:
    slack.slow["C1"] = 1.0
    notices(bot, "C1", 20, "many")
    worker = bot.runtime.worker
    worker.renew()
    worker.dispatch()
    until(lambda: post_calls(slack, "C1") >= 1, HEALTHY_WITHIN)
    started = time.monotonic()
    worker.deliverer.close()
    assert time.monotonic() - started < 3  # the post in flight settles, then it stops
    assert not worker.deliverer.drainers.busy()
    sent = len(slack.posts("C1"))
    time.sleep(1.2)
    assert len(slack.posts("C1")) == sent < 20


@pytest.mark.real_pacing
def test_with_more_channels_than_drainers_a_long_drain_yields_its_turn(
    tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim
) -> None:
    """One drainer slot (`[bot] delivery_threads = 1`), a backlog in C1 and one notice for C2: C1's
    drainer gives up the slot after its turn (`delivery_turn = 1`), C2 is served, and C1 goes on after it."""
    bot = subscribed_bot(tmp_path, database_url, slack, modzy, "[bot]\ndelivery_threads = 1\ndelivery_turn = 1\n")
    try:
        drainers = bot.runtime.worker.deliverer.drainers
        assert (drainers.slots, drainers.turn) == (1, 1)
        one_slot_yields_its_turn(bot, slack)
    finally:
        bot.close()


def one_slot_yields_its_turn(bot: Bot, slack: FakeSlack) -> None:
    notices(bot, "C1", 20, "backlog")
    worker = bot.runtime.worker
    worker.renew()
    worker.dispatch()
    until(lambda: len(slack.posts("C1")) >= 1, HEALTHY_WITHIN)
    notices(bot, "C2", 1, "news")
    worker.dispatch()  # C2 waits for the one slot
    until(lambda: len(slack.posts("C2")) == 1, 3)
    before = len(slack.posts("C1"))
    assert before < 6
    until(lambda: len(slack.posts("C1")) > before, 3)  # and C1 has its turn again
