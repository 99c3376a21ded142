"""Failure streaks per job family and the recovery that ends one, end to end through the Batch
simulator and the fake Slack: counted from run_history, so across restarts and retention."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from bot.core import history
from bot.sim.batch import BatchSim
from bot.sim.slack import FakeSlack
from bot.store.tables import JobSnapshot
from providers import Job, JobStatus
from tests.conftest import AWS_ENV
from tests.harness import Bot, MovableClock, text_of

CONFIG = """
[bot]
retention_days = 1

[[queues]]
name = "gpu"
provider = "batch"
region = "us-east-1"
job_queue = "gpu-spot"
endpoint_url = "{url}"
access_key_env = "TEST_AWS_KEY"
secret_key_env = "TEST_AWS_SECRET"
"""


def fail(bot: Bot, batch: BatchSim, name: str) -> None:
    job = batch.add(name, "RUNNING")
    bot.cycle()
    batch.set(job.job_id, "FAILED", reason="Essential container in task exited")
    bot.cycle()


def succeed(bot: Bot, batch: BatchSim, name: str) -> None:
    job = batch.add(name, "RUNNING")
    bot.cycle()
    batch.set(job.job_id, "SUCCEEDED")
    bot.cycle()


def test_streaks_count_across_restarts_and_retention_and_a_recovery_passes_a_failure_filter(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim
) -> None:
    clock = MovableClock()
    config = CONFIG.format(url=batch.url)
    bot = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)
    bot.command("subscribe gpu failed", channel="C1")
    bot.command("subscribe gpu failed --no-recovery", channel="C2")
    bot.command("subscribe gpu succeeded", channel="C3")
    bot.cycle()  # baseline
    fail(bot, batch, "nightly-eval-2026-12-01")
    (first,) = slack.posts("C1")
    assert "in a row" not in text_of(first)  # a first failure is no streak
    bot.close()

    bot = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url, clock=clock)  # a restart
    fail(bot, batch, "nightly-eval-2026-12-02")
    second = slack.posts("C1")[-1]
    assert "2nd failure in a row of nightly-eval (since" in text_of(second), text_of(second)

    clock.offset = timedelta(days=3)  # retention prunes the finished jobs and their alerts...
    bot.runtime.worker.prune()
    with bot.runtime.db.read() as session:
        assert not session.exec(select(JobSnapshot).where(JobSnapshot.queue == "gpu")).all()
    fail(bot, batch, "nightly-eval-2026-12-03")  # ...but not the run history the streak is counted from
    third = slack.posts("C1")[-1]
    assert "3rd failure in a row of nightly-eval" in text_of(third), text_of(third)
    fail(bot, batch, "other-job-1")  # another family: a streak of its own
    assert "in a row" not in text_of(slack.posts("C1")[-1])

    succeed(bot, batch, "nightly-eval-2026-12-04")
    recovered = [p for p in slack.posts("C1") if "recovered" in text_of(p)]
    assert len(recovered) == 1 and "nightly-eval recovered after 3 failures" in text_of(recovered[0])
    assert not [p for p in slack.posts("C2") if "succeeded" in text_of(p)]  # opted out
    assert "nightly-eval recovered after 3 failures" in text_of(slack.posts("C3")[-1])

    succeed(bot, batch, "nightly-eval-2026-12-05")  # a second success is no recovery
    assert len([p for p in slack.posts("C1") if "succeeded" in text_of(p)]) == 1
    assert "recovered" not in text_of(slack.posts("C3")[-1])
    bot.close()


def test_a_stopped_run_leaves_the_streak_and_a_run_stored_twice_counts_once() -> None:
    at = history.Streak()
    for job_id, status in [("a", "failed"), ("a", "failed"), ("b", "stopped"), ("c", "timed_out")]:
        at = at.then(job_id, status, None)
    assert at.failures == 2
    job = Job(queue="q", id="d", name="eval-9", status=JobStatus.SUCCEEDED, native_status="SUCCEEDED")
    shown = history.with_streak(job, "eval", at, at.then("d", "succeeded", None))
    assert history.streak_words(shown) == "eval recovered after 2 failures"
    one = history.Streak().then("x", "failed", None)
    assert history.recovered_after(history.with_streak(job, "eval", one, history.Streak())) == 0
    assert [history.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "101st",
    ]
