"""Follow-up of unclaimed failures, end to end through the Batch simulator and the fake Slack on a
clock the test moves: once across a restart, held in quiet hours, cancelled by a claim or a success."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.blocks import render
from bot.sim.batch import BatchSim
from bot.sim.slack import FakeSlack
from bot.store.tables import JobSnapshot, OutboxItem
from tests.conftest import AWS_ENV
from tests.harness import Bot, MovableClock, text_of

GROUP, ALICE = "SONCALL01", "UALICE001"
CONFIG = """
[bot]
follow_up_group = "{group}"

[owners]
alice = "{alice}"

[[queues]]
name = "gpu"
provider = "batch"
region = "us-east-1"
job_queue = "gpu-spot"
endpoint_url = "{url}"
access_key_env = "TEST_AWS_KEY"
secret_key_env = "TEST_AWS_SECRET"
owner_from = "name:^(?P<owner>alice)-"
"""


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


def make(tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock) -> Bot:
    config = CONFIG.format(group=GROUP, alice=ALICE, url=batch.url)
    return Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)


def fail(bot: Bot, batch: BatchSim, name: str) -> None:
    job = batch.add(name, "RUNNING")
    bot.cycle()
    batch.set(job.job_id, "FAILED", reason="Essential container in task exited")
    bot.cycle()
    bot.settle()


def follow_ups(slack: FakeSlack, channel: str = "C1") -> list[dict[str, Any]]:
    return [p for p in slack.posts(channel) if p.get("thread_ts") and "nobody has claimed it" in text_of(p)]


def at(bot: Bot, clock: MovableClock, minutes: float) -> None:
    clock.offset = timedelta(minutes=minutes)
    bot.cycle()
    bot.settle()


def test_one_follow_up_after_its_time_once_across_a_restart(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    bot = make(tmp_path, database_url, slack, batch, clock)
    assert "claimed after 30m gets one follow-up" in text_of(
        bot.command("subscribe gpu failed --follow-up 30m", channel="C1")
    )
    bot.command("subscribe gpu failed", channel="C2")  # no follow-up asked here
    bot.cycle()  # baseline
    fail(bot, batch, "etl-9")
    fail(bot, batch, "alice-train-3")
    at(bot, clock, 20)
    assert follow_ups(slack) == []
    at(bot, clock, 31)
    notes = follow_ups(slack)
    assert len(notes) == 2, [text_of(p) for p in notes]
    by_job = {("alice" if "alice-train-3" in text_of(p) else "etl"): text_of(p) for p in notes}
    assert f"<@{ALICE}>" in by_job["alice"] and f"<!subteam^{GROUP}>" in by_job["etl"]  # owner, else the group
    parents = {p["ts"]: p for p in slack.posts("C1") if not p.get("thread_ts")}
    assert all(p["thread_ts"] in parents for p in notes)  # in the job's thread
    at(bot, clock, 45)
    bot.close()
    bot = make(tmp_path, database_url, slack, batch, clock)  # a restart
    at(bot, clock, 60)
    assert len(follow_ups(slack)) == 2
    assert follow_ups(slack, "C2") == []
    bot.close()


def test_held_in_quiet_hours_until_the_window_ends(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    bot = make(tmp_path, database_url, slack, batch, clock)
    now = clock()
    window = f"{now + timedelta(minutes=10):%H:%M}-{now + timedelta(minutes=70):%H:%M}"
    bot.command(f"subscribe gpu failed --follow-up 30m --quiet {window} --quiet-tz UTC", channel="C1")
    bot.cycle()
    fail(bot, batch, "etl-9")  # before the window: the failure is told at once
    at(bot, clock, 40)  # its follow-up is due, but the channel is in its quiet hours
    assert follow_ups(slack) == []
    at(bot, clock, 72)  # the window has ended
    assert len(follow_ups(slack)) == 1
    at(bot, clock, 80)
    assert len(follow_ups(slack)) == 1
    bot.close()


def test_a_claim_or_a_success_cancels_it(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    bot = make(tmp_path, database_url, slack, batch, clock)
    bot.command("subscribe gpu --follow-up 30m", channel="C1")
    bot.cycle()
    fail(bot, batch, "etl-9")
    fail(bot, batch, "nightly-eval-1")
    (card,) = [p for p in slack.posts("C1") if not p.get("thread_ts") and "etl-9" in text_of(p)]
    claim = next(
        e for b in card["blocks"] for e in b.get("elements") or [] if e.get("action_id") == render.CLAIM_ACTION
    )
    bot.press(render.CLAIM_ACTION, claim["value"], channel="C1", user=ALICE)  # etl-9 is claimed
    rerun = batch.add("nightly-eval-2", "RUNNING")  # nightly-eval's next run succeeds: fixed
    bot.cycle()
    batch.set(rerun.job_id, "SUCCEEDED")
    bot.cycle()
    at(bot, clock, 31)
    at(bot, clock, 60)
    assert follow_ups(slack) == []
    bot.close()


def poll(bot: Bot, clock: MovableClock, minutes: float) -> None:
    """A poll only: what it writes is not delivered yet."""
    clock.offset = timedelta(minutes=minutes)
    bot.runtime.worker.renew()
    bot.runtime.worker.poll_all()


def written(bot: Bot) -> dict[str, str]:
    """The follow-ups in the outbox: job name -> state."""
    with bot.runtime.db.read() as session:
        rows = session.exec(select(OutboxItem).where(col(OutboxItem.alert_id).startswith("followup:"))).all()
        names = dict(session.exec(select(JobSnapshot.job_id, JobSnapshot.name)).all())
        return {names[r.job_id]: r.state for r in rows}


def test_a_follow_up_written_but_not_sent_is_withdrawn_by_a_claim_or_a_success(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    bot = make(tmp_path, database_url, slack, batch, clock)
    bot.command("subscribe gpu --follow-up 30m", channel="C1")
    bot.cycle()
    fail(bot, batch, "etl-9")
    fail(bot, batch, "nightly-eval-1")
    poll(bot, clock, 31)  # both follow-ups are written; neither is posted yet
    assert written(bot) == {"etl-9": "pending", "nightly-eval-1": "pending"}

    (card,) = [p for p in slack.posts("C1") if not p.get("thread_ts") and "etl-9" in text_of(p)]
    claim = next(
        e for b in card["blocks"] for e in b.get("elements") or [] if e.get("action_id") == render.CLAIM_ACTION
    )
    bot.press(render.CLAIM_ACTION, claim["value"], channel="C1", user=ALICE)  # in the gap
    assert written(bot) == {"nightly-eval-1": "pending"}  # the claim took etl-9's back

    rerun = batch.add("nightly-eval-2", "RUNNING")  # nightly-eval's next run succeeds: fixed
    poll(bot, clock, 32)
    assert written(bot) == {"nightly-eval-1": "pending"}  # a run that has not succeeded yet
    batch.set(rerun.job_id, "SUCCEEDED")
    poll(bot, clock, 33)
    assert written(bot) == {}  # the poll that saw the success took it back

    at(bot, clock, 40)
    at(bot, clock, 70)
    assert follow_ups(slack) == []  # and no later poll writes either again
    assert written(bot) == {}
    bot.close()


def test_follow_up_is_kept_with_the_subscription_and_its_export(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    bot = make(tmp_path, database_url, slack, batch, clock)
    bot.command("subscribe gpu failed --follow-up 2h", channel="C1")
    assert 'follow_up = "2h"' in text_of(bot.command("subscriptions export", channel="C1"))
    assert "--follow-up" in text_of(bot.command("subscribe gpu --follow-up 2s", channel="C1"))
    bot.close()


def test_subscriptions_shows_follow_up_and_no_recovery(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    bot = make(tmp_path, database_url, slack, batch, clock)
    bot.command("subscribe gpu failed --follow-up 2h --no-recovery", channel="C1")
    bot.command("subscribe gpu failed", channel="C2")
    listed = text_of(bot.command("subscriptions", channel="C1"))
    assert "follow-up after 2h" in listed and "no recovery" in listed, listed
    plain = text_of(bot.command("subscriptions", channel="C2"))
    assert "*gpu* — failed" in plain and "follow-up" not in plain and "recovery" not in plain, plain
    export = text_of(bot.command("subscriptions export", channel="C1"))
    assert 'follow_up = "2h"' in export and "recovery = false" in export  # the list says what the export says
    bot.close()
