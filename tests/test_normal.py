"""Alerts that know what is normal, end to end: failure causes, history, slow and stuck jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.blocks import render
from bot.sim.batch import BatchSim, ServiceJob
from bot.sim.slack import FakeSlack
from bot.store.tables import RunHistory
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
def batch() -> Iterator[BatchSim]:
    sim = BatchSim().start()
    yield sim
    sim.stop()


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


def queued_since(batch: BatchSim, name: str, minutes: float) -> ServiceJob:
    """A job queued (RUNNABLE) since `minutes` ago."""
    return batch.add(name, "RUNNABLE", created_ms=int(time.time() * 1000 - minutes * 60_000))


def test_a_slow_job_is_flagged_once_across_restarts(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim
) -> None:
    seed_history(batch, "train", 6)
    slow = batch.add("train-99", "RUNNING", created_ms=int(time.time() * 1000) - 41 * 60_000)
    slow.started_ms = int(time.time() * 1000) - 40 * 60_000  # 4x the usual 10 minutes
    config = BATCH_QUEUE.format(url=batch.url, extra="")
    first = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url)
    first.command("subscribe gpu failed slow stuck", channel="C1")
    first.cycle()  # baseline: the history is recorded
    first.cycle()
    first.cycle()
    first.close()
    again = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url)
    again.cycle()
    again.cycle()
    (flag,) = slack.posts("C1")
    assert "train-99" in flag["text"] and "slow" in flag["text"]
    assert "running 40 min, past its threshold of 15 min (1.5 × p90 10 min)" in text_of(flag)
    assert "usually 10 min (p50), 10 min (p90) · ETA" in text_of(again.command("status gpu train-99"))
    stats = text_of(again.command("stats gpu train"))
    assert "6 finished · 100% succeeded · run p50 10 min" in stats
    again.close()


def test_no_flag_without_enough_history(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    seed_history(batch, "train", 4)
    slow = batch.add("train-99", "RUNNING")
    slow.started_ms = int(time.time() * 1000) - 40 * 60_000
    bot.command("subscribe gpu slow", channel="C1")
    for _ in range(3):
        bot.cycle()
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


def test_a_stuck_job_is_flagged_once_across_restarts(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim
) -> None:
    seed_history(batch, "train", 6)  # each waited a minute before running
    batch.add("eval-7", "RUNNABLE", created_ms=int(time.time() * 1000) - 48 * 60_000)
    config = BATCH_QUEUE.format(url=batch.url, extra="")
    first = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url)
    first.command("subscribe gpu stuck", channel="C1")
    first.cycle()  # baseline: the waits are recorded, nothing is flagged
    assert slack.posts("C1") == []
    first.cycle()
    first.cycle()
    first.close()
    again = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url)
    again.cycle()
    again.cycle()
    (flag,) = slack.posts("C1")
    assert (
        "eval-7 in gpu is stuck: queued 48 min, past its threshold of 10 min (usually under 1 min; floor 10 min)"
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


def test_history_learned_after_the_baseline_flags_a_slow_job(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    runs = [batch.add(f"train-{n}", "RUNNING") for n in range(5)]
    bot.command("subscribe gpu slow", channel="C1")
    bot.cycle()  # baseline: nothing finished yet, no history
    for job in runs:
        batch.set(job.job_id, "SUCCEEDED")
        assert job.stopped_ms is not None
        job.started_ms = job.stopped_ms - 10 * 60_000  # each ran 10 minutes
    bot.cycle()  # five runs of `train` recorded: now there is enough history
    late = batch.add("train-99", "RUNNING")
    late.started_ms = int(time.time() * 1000) - 20 * 60_000  # twice the usual
    bot.cycle()
    (flag,) = slack.posts("C1")
    assert "train-99 in gpu is slow: running 20 min, past its threshold of 15 min (1.5 × p90 10 min)" in flag["text"]


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
