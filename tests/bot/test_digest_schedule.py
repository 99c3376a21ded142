"""Scheduled digests: one message per period, exactly once with a clock that jumps, across a
restart and with two workers; visible and removable in chat, audited, access-checked."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.core.clock import utcnow
from bot.features import schedules
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.slack import grammar
from bot.store.tables import AuditEntry, DigestSchedule, OutboxItem
from tests.conftest import AWS_ENV
from tests.harness import Bot, queue_config, text_of
from tests.harness import MovableClock as Clock

MONDAY_8 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # a Monday


def at(clock: Clock, moment: datetime) -> None:
    clock.offset = moment - utcnow()


def digests(slack: FakeSlack) -> list[dict[str, Any]]:
    return [p for p in slack.posts("C1") if "digest of ml" in p["text"] and not p.get("thread_ts")]


def tick(bot: Bot) -> None:
    """What the worker's scheduler does each minute and second: check the schedules, deliver."""
    bot.runtime.worker.renew()
    bot.runtime.worker.digests()
    bot.runtime.worker.deliver()
    bot.runtime.worker.deliver()  # thread replies follow their parent


def start(tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock, url: str) -> Bot:
    return Bot(tmp_path, slack, queue_config(sagemaker), env=AWS_ENV, clock=clock, database_url=url)


def test_daily_digest_is_posted_once_per_period_with_a_clock_that_jumps_and_a_restart(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock
) -> None:
    at(clock, MONDAY_8)
    bot = start(tmp_path, slack, sagemaker, clock, database_url)
    try:
        for name in ("fast", "slow", "broken", "hung"):
            sagemaker.add(name, status="InProgress", secondary="Training")
        reply = text_of(bot.command("digest ml daily 09:00 --tz UTC", channel="C1"))
        assert ":calendar: Scheduled a daily 09:00 UTC digest of `ml` (UTC)" in reply
        bot.cycle()
        tick(bot)
        assert digests(slack) == []  # the period that ended Sunday 09:00 predates the schedule

        at(clock, MONDAY_8 + timedelta(minutes=30))
        sagemaker.set("fast", "Completed", "Completed")
        sagemaker.set("slow", "Completed", "Completed")
        sagemaker.set("broken", "Failed", "Failed", reason="CUDA out of memory")
        sagemaker.set("hung", "Failed", "Failed", reason="CUDA out of memory")
        bot.cycle()
        posted = len(slack.posts())

        at(clock, MONDAY_8 + timedelta(hours=1, seconds=5))
        tick(bot)
        (first,) = digests(slack)
        text = text_of(first)
        assert "Daily digest of ml since Sun 2026-11-29 09:00" in text
        assert "2 succeeded" in text and "2 failed" in text and "Success rate: 50% of 4 finished jobs" in text
        assert "Failures by cause: 2 out_of_memory" in text  # SageMaker's rules, the queue's provider
        (thread,) = [p for p in slack.posts("C1") if p.get("thread_ts") == first["ts"]]
        assert "broken" in thread["text"] and "hung" in thread["text"] and "took" in thread["text"]
        assert "failed (out_of_memory): CUDA out of memory" in thread["text"]

        for moment in (timedelta(hours=1, minutes=1), timedelta(minutes=59), timedelta(hours=23)):
            at(clock, MONDAY_8 + moment)  # later in the period, back before its end, forward again
            tick(bot)
        bot.close()
        bot = start(tmp_path, slack, sagemaker, clock, database_url)
        tick(bot)
        assert len(digests(slack)) == 1

        at(clock, MONDAY_8 + timedelta(days=3, hours=2))  # the clock jumps over two periods
        tick(bot)
        tick(bot)
        assert len(digests(slack)) == 2 and "since Wed 2026-12-02 09:00" in text_of(digests(slack)[-1])
        assert "No job finished in this period" in text_of(digests(slack)[-1])
        assert len(slack.posts()) == posted + 2 + 1  # two digests, one thread reply (the first)
        assert slack.problems() == []
    finally:
        bot.close()


def test_two_workers_write_each_period_once(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock
) -> None:
    at(clock, MONDAY_8)
    one = start(tmp_path, slack, sagemaker, clock, database_url)
    two = start(tmp_path, slack, sagemaker, clock, database_url)
    try:
        one.command("digest ml weekly mon 09:00 --tz UTC", channel="C1")
        at(clock, MONDAY_8 + timedelta(hours=2))
        one.runtime.worker.renew()
        two.runtime.worker.renew()  # a standby: it does not hold the lease
        assert (one.runtime.worker.digests(), two.runtime.worker.digests()) == (1, 0)
        one.runtime.worker.close()  # the first worker stops; the standby takes over in the same period
        two.runtime.worker.renew()
        assert two.runtime.worker.digests() == 0

        # Even two writers at once (no lease at all) owe the period once: the outbox key is the period.
        db = two.runtime.db
        with db.write() as session:
            for row in session.exec(select(OutboxItem)).all():
                session.delete(row)
        barrier = threading.Barrier(4)
        counts: list[int] = []

        def write() -> None:
            barrier.wait()
            counts.append(schedules.enqueue_due(db, clock(), default_tz="UTC"))

        threads = [threading.Thread(target=write) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(counts) == [0, 0, 0, 1]
        with db.read() as session:
            rows = session.exec(select(OutboxItem)).all()
        assert [r.alert_id for r in rows if r.kind == "digest"] == ["sched:ml:2026-11-30T09:00:00+00:00"]
        two.runtime.worker.deliver()
        assert len(digests(slack)) == 1
    finally:
        one.close()
        two.close()


def test_schedules_are_listed_removed_and_audited(ml: Bot) -> None:
    ml.command("subscribe ml", channel="C1")
    assert "Scheduled a weekly fri 17:30 digest" in text_of(ml.command("digest ml weekly friday 17:30", channel="C1"))
    assert "Rescheduled a daily 08:00 digest" in text_of(ml.command("digest ml daily 08:00", channel="C1"))
    listing = text_of(ml.command("subscriptions", channel="C1"))
    assert ":calendar: digest of ml: daily 08:00" in listing
    assert "Removed this channel's scheduled digest of `ml`" in text_of(ml.command("digest ml off", channel="C1"))
    assert "no scheduled digest" in text_of(ml.command("digest ml off", channel="C1"))
    assert "digest" not in text_of(ml.command("subscriptions", channel="C1"))
    assert "unknown queue `nope`" in text_of(ml.command("digest nope daily 09:00", channel="C1"))
    with ml.runtime.db.read() as session:
        assert session.exec(select(DigestSchedule)).all() == []
        details = [a.detail for a in session.exec(select(AuditEntry)).all() if a.action.startswith("digest")]
    assert details == ["weekly fri 17:30 new", "daily 08:00 updated", "off removed", "off none"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("digest ml", "name a queue and daily"),
        ("digest ml hourly 09:00", "say daily HH:MM"),
        ("digest ml daily 9am", "the time is HH:MM"),
        ("digest ml weekly someday 09:00", "unknown day 'someday'"),
        ("digest ml weekly 09:00", "unknown day '09:00'"),
        ("digest ml daily 09:00 --tz Nowhere/City", "unknown time zone 'Nowhere/City'"),
    ],
)
def test_bad_schedules_are_refused(text: str, problem: str) -> None:
    with pytest.raises(grammar.UsageError, match=problem):
        grammar.parse(text)


def test_periods_follow_the_wall_clock_across_daylight_saving() -> None:
    sched = DigestSchedule(
        team_id="T",
        channel_id="C",
        queue="ml",
        cadence="daily",
        at="09:00",
        tz="Europe/Paris",
        created_by="U",
        created_at=MONDAY_8,
    )
    # Paris goes to summer time on 2026-03-29: that day's period is 23 hours long.
    start, end = schedules.period(sched, datetime(2026, 3, 29, 8, 0, tzinfo=UTC), "UTC")
    assert (start, end) == (datetime(2026, 3, 28, 8, 0, tzinfo=UTC), datetime(2026, 3, 29, 7, 0, tzinfo=UTC))
    sched.cadence, sched.weekday = "weekly", 0
    start, end = schedules.period(sched, datetime(2026, 12, 2, 12, 0, tzinfo=UTC), "UTC")
    assert (start, end) == (datetime(2026, 11, 23, 8, 0, tzinfo=UTC), datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
