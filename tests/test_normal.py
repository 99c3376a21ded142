"""Alerts that know what is normal, end to end: failure causes, history, slow and stuck jobs."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.blocks import render
from bot.core import history
from bot.pipeline.usual import Normal, flags
from bot.sim.batch import BatchSim, ServiceJob
from bot.sim.slack import FakeSlack
from bot.store.snapshots import queue_view
from bot.store.tables import OutboxItem, QueueState, RunHistory
from providers import Job, JobStatus
from tests.conftest import AWS_ENV
from tests.harness import Bot, MovableClock, text_of

BATCH_QUEUE = """
[[queues]]
name = "gpu"
provider = "batch"
region = "us-east-1"
job_queue = "gpu-spot"
endpoint_url = "{url}"
access_key_env = "TEST_AWS_KEY"
secret_key_env = "TEST_AWS_SECRET"
{extra}
"""


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, BATCH_QUEUE.format(url=batch.url, extra=""), env=AWS_ENV, database_url=database_url)
    yield b
    b.close()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def timed(tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock) -> Iterator[Bot]:
    """The bot on a clock the test moves on (the simulator's jobs keep real time): a job crosses
    its threshold between two polls without the test waiting for it."""
    config = BATCH_QUEUE.format(url=batch.url, extra="")
    b = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)
    yield b
    b.close()


def test_a_failure_shows_its_cause(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    job = batch.add("llama-sft", "RUNNING")
    bot.command("subscribe gpu failed", channel="C1")
    bot.cycle()  # baseline
    batch.set(job.job_id, "FAILED", reason="Host EC2 (instance i-0abc) terminated.")
    bot.cycle()
    bot.cycle()
    (alert,) = slack.posts("C1")
    assert "cause: *spot_interruption*" in text_of(alert)
    assert "spot_interruption" in text_of(bot.command("status gpu llama-sft"))


def test_digest_counts_failures_by_cause() -> None:
    def failed(n: int, cause: str) -> Job:
        extra: dict[str, str | int | float | bool | None] = {"cause": cause}
        return Job(queue="q", id=str(n), name=f"j{n}", status=JobStatus.FAILED, native_status="Failed", extra=extra)

    jobs = [failed(i, "spot_interruption") for i in range(30)] + [failed(100 + i, "user_code") for i in range(7)]
    message = render.digest_message({"failed": 37}, ["q"], causes=render.cause_counts(jobs))
    assert "37 failed: 30 spot_interruption, 7 user_code" in message.blocks[0]["text"]["text"]


def seed_history(batch: BatchSim, family: str, runs: int, *, minutes: int = 10, wait_s: float = 60) -> None:
    """`runs` succeeded jobs of `family` that waited `wait_s` seconds and ran `minutes` each, a day ago."""
    day_ago = int(time.time() * 1000) - 86_400_000
    for n in range(runs):
        job = batch.add(f"{family}-{n}", "SUCCEEDED", created_ms=day_ago)
        job.started_ms = day_ago + int(wait_s * 1000)
        job.stopped_ms = job.started_ms + minutes * 60_000


def running_since(batch: BatchSim, name: str, minutes: float) -> ServiceJob:
    """A job that started running `minutes` ago (created a minute before)."""
    started = int(time.time() * 1000 - minutes * 60_000)
    job = batch.add(name, "RUNNING", created_ms=started - 60_000)
    job.started_ms = started
    return job


def queued_since(batch: BatchSim, name: str, minutes: float) -> ServiceJob:
    """A job queued (RUNNABLE) since `minutes` ago."""
    return batch.add(name, "RUNNABLE", created_ms=int(time.time() * 1000 - minutes * 60_000))


def flag_rows(bot: Bot) -> list[str]:
    """The alert ids of every flag the store ever owed a channel."""
    with bot.runtime.db.read() as session:
        return list(session.exec(select(OutboxItem.alert_id).where(OutboxItem.kind == "flag")).all())


def test_a_slow_job_is_flagged_once_when_it_crosses_and_not_again_after_a_restart(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim
) -> None:
    seed_history(batch, "train", 6)  # p90 10 min: slow past max(1.5 x 10, 10 + 5) = 15 min
    running_since(batch, "train-98", 40)  # slow already when jobwatch starts: never announced
    running_since(batch, "train-99", 14)  # crosses 15 min a minute after the baseline
    clock = MovableClock()
    config = BATCH_QUEUE.format(url=batch.url, extra="")
    first = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)
    first.command("subscribe gpu failed slow stuck", channel="C1")
    first.cycle()  # baseline: the history is recorded
    first.cycle()
    assert slack.posts("C1") == []
    clock.offset = timedelta(minutes=2)
    first.cycle()  # train-99 crossed since the last poll
    first.cycle()
    first.close()
    again = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)
    again.cycle()
    clock.offset = timedelta(minutes=3)
    again.cycle()
    (flag,) = slack.posts("C1")
    assert "train-99 in gpu is slow: running 16 min, past its threshold of 15 min (1.5 × p90 10 min)" in flag["text"]
    assert "usually 10 min (p50), 10 min (p90) · ETA" in text_of(again.command("status gpu train-98"))
    stats = text_of(again.command("stats gpu train"))
    assert "6 finished · 100% succeeded · run p50 10 min" in stats
    assert flag_rows(again) == [f"slow:gpu:{j.arn}" for j in batch.jobs.values() if j.name == "train-99"]
    again.close()


def test_no_flag_without_enough_history(timed: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock) -> None:
    seed_history(batch, "train", 4)
    running_since(batch, "train-99", 14)
    timed.command("subscribe gpu slow", channel="C1")
    timed.cycle()
    timed.cycle()
    clock.offset = timedelta(minutes=30)  # 44 min: it would be slow with a fifth run
    timed.cycle()
    assert slack.posts("C1") == []


def test_cause_filter(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    spot, code = batch.add("a", "RUNNING"), batch.add("b", "RUNNING")
    assert "failures caused by out_of_memory, user_code" in text_of(
        bot.command("subscribe gpu failed --cause oom,user_code", channel="C1")
    )
    bot.cycle()
    batch.set(spot.job_id, "FAILED", reason="Host EC2 (instance i-0abc) terminated.")
    batch.set(code.job_id, "FAILED", reason="Essential container in task exited")
    bot.cycle()
    bot.cycle()
    (alert,) = slack.posts("C1")
    assert alert["text"].startswith("b in gpu")
    assert "--cause: unknown cause 'gremlins'" in text_of(bot.command("subscribe gpu --cause gremlins"))


def test_a_stuck_job_is_flagged_once_when_it_crosses_and_not_again_after_a_restart(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim
) -> None:
    seed_history(batch, "train", 6)  # each waited a minute: stuck past max(1 x 1 min, floor 10 min)
    queued_since(batch, "eval-7", 48)  # stuck already when jobwatch starts: never announced
    queued_since(batch, "eval-8", 9)
    clock = MovableClock()
    config = BATCH_QUEUE.format(url=batch.url, extra="")
    first = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)
    first.command("subscribe gpu stuck", channel="C1")
    first.cycle()  # baseline: the waits are recorded, nothing is flagged
    first.cycle()
    assert slack.posts("C1") == []
    clock.offset = timedelta(minutes=2)
    first.cycle()
    first.close()
    again = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)
    again.cycle()
    again.cycle()
    (flag,) = slack.posts("C1")
    assert (
        "eval-8 in gpu is stuck: queued 11 min, past its threshold of 10 min (usually under 1 min; floor 10 min)"
        in flag["text"]
    )
    assert flag.get("thread_ts") is None or flag.get("reply_broadcast")  # seen at the channel's top level
    again.close()


def test_degenerate_waits_do_not_make_a_job_stuck_before_the_floor(
    timed: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    """Every recorded wait is 0 s (p95 0 s): a queued job is stuck only past the 10 min floor."""
    seed_history(batch, "etl", 50, minutes=1, wait_s=0)
    queued_since(batch, "etl-new", 0)
    timed.command("subscribe gpu stuck", channel="C1")
    timed.cycle()  # baseline
    for minutes in (1, 5, 9):
        clock.offset = timedelta(minutes=minutes)
        timed.cycle()
    assert slack.posts("C1") == []
    clock.offset = timedelta(minutes=10, seconds=30)
    timed.cycle()
    (flag,) = slack.posts("C1")
    assert (
        "etl-new in gpu is stuck: queued 10 min, past its threshold of 10 min (usually under 0 s; floor 10 min)"
        in (flag["text"])
    )


def test_a_stuck_floor_from_the_queue_config(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim
) -> None:
    seed_history(batch, "etl", 50, minutes=1, wait_s=0)
    queued_since(batch, "etl-new", 0)
    clock = MovableClock()
    config = BATCH_QUEUE.format(url=batch.url, extra="stuck_floor = 120")
    bot = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)
    bot.command("subscribe gpu stuck", channel="C1")
    bot.cycle()
    clock.offset = timedelta(minutes=3)
    bot.cycle()
    (flag,) = slack.posts("C1")
    assert "queued 3 min, past its threshold of 2 min (usually under 0 s; floor 2 min)" in flag["text"]
    bot.close()


def test_a_job_that_crosses_while_polls_fail_is_flagged_at_the_next_successful_poll(
    timed: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    seed_history(batch, "train", 6)
    queued_since(batch, "eval-8", 9)
    timed.command("subscribe gpu stuck", channel="C1")
    timed.cycle()  # baseline
    timed.cycle()
    for minutes in (1, 2, 3):  # eval-8 passes its 10 min while every poll fails
        clock.offset = timedelta(minutes=minutes)
        batch.faults.append("auth")
        timed.cycle()
    with timed.runtime.db.read() as session:
        state = session.get(QueueState, "gpu")
        assert state is not None and state.consecutive_failures == 3
    assert slack.posts("C1") == []
    timed.cycle()
    timed.cycle()
    (flag,) = slack.posts("C1")
    assert "eval-8 in gpu is stuck: queued 12 min, past its threshold of 10 min" in flag["text"]


def test_history_learned_after_the_baseline_flags_only_jobs_that_cross_after_it(
    timed: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    runs = [batch.add(f"train-{n}", "RUNNING") for n in range(5)]
    timed.command("subscribe gpu slow", channel="C1")
    timed.cycle()  # baseline: nothing finished yet, no history
    for job in runs:
        batch.set(job.job_id, "SUCCEEDED")
        assert job.stopped_ms is not None
        job.started_ms = job.stopped_ms - 10 * 60_000  # each ran 10 minutes
    running_since(batch, "train-98", 20)  # past 15 min when the history becomes enough: not news
    running_since(batch, "train-99", 14)
    timed.cycle()  # five runs of `train` recorded: now there is enough history
    timed.cycle()
    assert slack.posts("C1") == []
    clock.offset = timedelta(minutes=2)
    timed.cycle()
    (flag,) = slack.posts("C1")
    assert "train-99 in gpu is slow: running 16 min, past its threshold of 15 min (1.5 × p90 10 min)" in flag["text"]


def test_the_baseline_keeps_history_only_of_families_that_recur(bot: Bot, batch: BatchSim) -> None:
    seed_history(batch, "train", 3)
    for name in ("alpha-1", "beta-2", "gamma-3"):
        seed_history(batch, name, 1)
    bot.cycle()  # baseline
    with bot.runtime.db.read() as session:
        families = sorted(session.exec(select(RunHistory.family)).all())
    assert families == ["train"] * 3
    one_off = batch.add("delta-4", "RUNNING")
    bot.cycle()
    batch.set(one_off.job_id, "SUCCEEDED")
    bot.cycle()  # after the baseline every finished job counts
    with bot.runtime.db.read() as session:
        assert "delta" in session.exec(select(RunHistory.family)).all()


def test_stats_through_the_app(bot: Bot, batch: BatchSim) -> None:
    seed_history(batch, "train", 5)
    bot.cycle()
    reply = text_of(bot.command("stats gpu"))
    assert "5 finished · 100% succeeded · run p50 10 min" in reply and "train" in reply
    assert "no finished jobs" in text_of(bot.command("stats gpu eval")).lower()
    for bad in ("stats", "stats gpu train extra"):
        assert "name a queue, and optionally a job family\nUsage: /jobs stats &lt;queue&gt; [family]" in text_of(
            bot.command(bad)
        )
    assert "unknown queue" in text_of(bot.command("stats nope"))


SCALE = 3_000
FAMILIES = {"etl": 4.0, "train": 12.0, "eval": 25.0}  # usual run time in minutes


def seed_account(batch: BatchSim, rng: random.Random) -> tuple[int, int]:
    """SCALE jobs created over the last two days (but for the last hour), 3% of them live: half
    queued, half running since their creation; the others finished after a wait of up to 20 s and
    a run of about their family's usual time. Returns (queued, running)."""
    now_ms = int(time.time() * 1000)
    counts = {"RUNNABLE": 0, "RUNNING": 0}
    for i in range(SCALE):
        family = list(FAMILIES)[i % len(FAMILIES)]
        created = now_ms - rng.randint(3_600_000, 2 * 86_400_000)
        if i % 33 == 0:  # 3% live
            status = "RUNNABLE" if i % 66 == 0 else "RUNNING"
            job = batch.add(f"hist-{family}-{i:06d}", status, created_ms=created)
            if status == "RUNNING":
                job.started_ms = created + rng.randint(0, 20_000)
            counts[status] += 1
            continue
        status = "FAILED" if rng.random() < 0.1 else "SUCCEEDED"
        job = batch.add(f"hist-{family}-{i:06d}", status, created_ms=created)
        job.started_ms = created + rng.randint(0, 20_000)
        job.stopped_ms = job.started_ms + int(FAMILIES[family] * 60_000 * rng.uniform(0.8, 1.2))
    return counts["RUNNABLE"], counts["RUNNING"]


def test_at_scale_only_a_job_that_crosses_after_the_baseline_is_flagged(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    """3,000 jobs, 91 of them queued or running for hours when jobwatch starts, with ample history:
    none of those is ever announced (the measured fault: ~500 flags within 3 minutes of starting
    on 5 such queues); a job that crosses its threshold after the baseline is, once, and a restart
    does not announce anything again."""
    queued, running = seed_account(batch, random.Random(11))
    assert queued + running == 91
    config = BATCH_QUEUE.format(url=batch.url, extra="")
    bot = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)
    bot.command("subscribe gpu slow stuck", channel="C1")
    bot.cycle()  # baseline
    assert flag_rows(bot) == []
    for minutes in (1, 2, 3):
        clock.offset = timedelta(minutes=minutes)
        bot.cycle()
    assert flag_rows(bot) == [] and slack.posts("C1") == []
    # They are slow and stuck all the same (what a listing would say of them), just not news.
    view = queue_view(bot.runtime.db, "gpu")
    normal = Normal("gpu")
    with bot.runtime.db.read() as session:
        normal.load(session, None)
    now = clock()
    stuck = [j for j in view.live if history.stuck_for(j, normal.usual(""), now) is not None]
    slow = [j for j in view.live if history.slow_for(j, normal.usual(normal.family(j)), now) is not None]
    assert (len(stuck), len(slow)) == (queued, running)
    oldest = min(slow, key=lambda j: j.started_at or now)
    assert "usually" in text_of(bot.command(f"status gpu {oldest.name}"))  # what is usual, as before
    assert text_of(bot.command("list gpu running --limit 5")).count("hist-") == 5
    assert bot.open_home()["type"] == "home"
    # Seen for the first time after the baseline, but queued for hours: not news either.
    queued_since(batch, "late-listed-000001", 180)
    # A train run that starts now: train's p90 is at most 14.4 min, so it is slow within 22 min.
    fresh = running_since(batch, "hist-train-999999", 0)
    bot.cycle()
    clock.offset = timedelta(minutes=25)
    bot.cycle()
    bot.cycle()
    assert flag_rows(bot) == [f"slow:gpu:{fresh.arn}"]
    (flag,) = slack.posts("C1")
    pattern = r"hist-train-999999 in gpu is slow: running 25 min, past its threshold of 2\d min \(1\.5 × p90 1\d min\)"
    assert re.search(pattern, flag["text"]), flag["text"]
    bot.close()
    # A restart: a fresh worker (and Normal) on the same store announces nothing again.
    again = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)
    again.cycle()
    clock.offset = timedelta(minutes=26)
    again.cycle()
    view = queue_view(again.runtime.db, "gpu")
    normal = Normal("gpu")
    with again.runtime.db.read() as session:
        normal.load(session, None)
    assert flags(view.live, normal, clock(), view.since) == []
    assert len(slack.posts("C1")) == 1 and len(flag_rows(again)) == 1
    again.close()
