"""Runtime limits, end to end for each provider that declares one: the limit read once (and no more
across a restart), one thread note at 80 % and one at 95 % of it, and a job the provider stopped at
its limit told as timed_out with that reason."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.sim.slack import FakeSlack
from providers import Job, JobStatus
from providers.alibaba_pai import source_state
from providers.limits import limit_ends, used
from tests.harness import Bot, MovableClock, SimQueue, sim_queue, text_of

LIMIT = 1000.0  # seconds


@dataclass
class Limited(SimQueue):
    """A provider's simulator with a running job that declares LIMIT, and how it ends at it."""

    start: Callable[[], Any]  # a running job with a limit of LIMIT; returns a handle
    end_at_limit: Callable[[Any], None]  # the provider stops it because of its limit


def sagemaker() -> Limited:
    q = sim_queue("sagemaker")

    def start() -> Any:
        job = q.sim.add("bert-ft", status="InProgress", secondary="Training")
        job.max_runtime = int(LIMIT)
        return job

    return Limited(**vars(q), start=start, end_at_limit=lambda j: q.sim.set(j.name, "Stopped", "MaxRuntimeExceeded"))


def batch() -> Limited:
    q = sim_queue("batch")

    def start() -> Any:
        job = q.sim.add("llama-sft", "RUNNING")
        job.started_ms, job.timeout_s = int(time.time() * 1000), int(LIMIT)
        return job

    def end(job: Any) -> None:
        q.sim.set(job.job_id, "FAILED", reason="Job attempt duration exceeded timeout")

    return Limited(**vars(q), start=start, end_at_limit=end)


def modzy() -> Limited:
    q = sim_queue("modzy")

    def start() -> Any:
        job = q.sim.add("ocr", "IN_PROGRESS")
        job.timeout_ms = int(LIMIT * 1000)
        return job

    return Limited(**vars(q), start=start, end_at_limit=lambda j: q.sim.set(j.ident, "TIMEDOUT"))


def pai() -> Limited:
    q = sim_queue("pai")

    def start() -> Any:
        run = q.sim.add("qwen-sft", "Running", kind="DLC")
        q.sim.jobs[run.source_id].max_minutes = int(LIMIT / 60)
        return run

    def end(run: Any) -> None:
        q.sim.set(run.source_id, "Failed", reason=("JobTimeout", "the job exceeded its maximum running time"))

    return Limited(**vars(q), start=start, end_at_limit=end)


PROVIDERS = {"sagemaker": sagemaker, "batch": batch, "modzy": modzy, "pai": pai}
LIMITS = {"sagemaker": LIMIT, "batch": LIMIT, "modzy": LIMIT, "pai": 16 * 60.0}  # PAI: whole minutes


@pytest.fixture(params=sorted(PROVIDERS))
def world(request: pytest.FixtureRequest) -> Iterator[Limited]:
    w = PROVIDERS[request.param]()
    yield w
    w.sim.stop()


def notes(slack: FakeSlack, words: str) -> list[dict[str, Any]]:
    return [p for p in slack.posts("C1") if p.get("thread_ts") and words in text_of(p)]


@pytest.mark.sqlite_only
def test_warnings_at_80_and_95_percent_once_each_across_a_restart_then_timed_out_by_the_limit(
    tmp_path: Path, database_url: str, slack: FakeSlack, world: Limited
) -> None:
    clock = MovableClock()
    if world.provider == "sagemaker":  # its listing is by LastModifiedTime: the service keeps the bot's time
        world.sim.clock = clock
    config = world.queue("q")
    limit = LIMITS[world.provider]
    bot = Bot(tmp_path, slack, config, env=world.env, database_url=database_url, clock=clock)
    bot.command("subscribe q", channel="C1")
    bot.cycle()  # baseline
    handle = world.start()
    bot.cycle()
    (card,) = slack.posts("C1")
    assert "running" in text_of(card)
    if world.provider == "sagemaker":  # the limit costs one DescribeTrainingJob per job, once
        assert world.sim.requests.count("SageMaker.DescribeTrainingJob") == 1

    clock.offset = timedelta(seconds=0.85 * limit)
    bot.cycle()
    bot.cycle()
    bot.settle()
    (eighty,) = notes(slack, "80 % of its")
    assert eighty["thread_ts"] == card["ts"] and "it will be stopped at" in text_of(eighty), text_of(eighty)
    bot.close()

    bot = Bot(tmp_path, slack, config, env=world.env, database_url=database_url, clock=clock)  # a restart
    bot.cycle()
    assert len(notes(slack, "80 % of its")) == 1
    clock.offset = timedelta(seconds=0.96 * limit)
    bot.cycle()
    bot.cycle()
    bot.settle()
    (ninety_five,) = notes(slack, "95 % of its")
    assert ninety_five["thread_ts"] == card["ts"]
    assert len(notes(slack, "80 % of its")) == 1  # the 80 % note is not repeated
    if world.provider == "sagemaker":
        assert world.sim.requests.count("SageMaker.DescribeTrainingJob") == 1

    world.end_at_limit(handle)
    bot.cycle()
    bot.cycle()
    bot.settle()
    ended = [p for p in slack.posts("C1") if "*timed_out*" in text_of(p)]
    assert ended, [text_of(p) for p in slack.posts("C1")]
    said = text_of(ended[-1]).lower()
    assert "limit" in said or "timeout" in said or "maximum running time" in said, said
    assert not [p for p in slack.posts("C1") if "*stopped*" in text_of(p) or "→ *failed*" in text_of(p)]
    bot.close()


def test_a_job_first_seen_past_95_percent_gets_only_that_note() -> None:
    from datetime import UTC, datetime

    from bot.pipeline.limits import level

    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    job = Job(
        queue="q",
        id="j",
        name="j",
        status=JobStatus.RUNNING,
        native_status="Running",
        started_at=start,
        extra={"limit_s": 3600.0},
    )
    assert level(job, start + timedelta(minutes=30)) is None
    assert level(job, start + timedelta(minutes=49)) == 80
    assert level(job, start + timedelta(minutes=58)) == 95
    assert limit_ends(job) == start + timedelta(hours=1)
    assert used(job.model_copy(update={"extra": {}}), start) is None
    assert level(job.model_copy(update={"status": JobStatus.QUEUED}), start + timedelta(hours=2)) is None


def test_pai_stopped_by_a_person_is_not_a_time_out() -> None:
    by_person = {"Status": "Stopped", "ReasonCode": "JobStoppedByUser", "JobMaxRunningTimeMinutes": "60"}
    assert source_state("DLC", by_person).status is JobStatus.STOPPED
    timed = {"Status": "Stopped", "ReasonCode": "", "ReasonMessage": "max running time reached"}
    assert source_state("DLC", {**timed, "JobMaxRunningTimeMinutes": "60"}).status is JobStatus.TIMED_OUT
    assert source_state("DLC", timed).status is JobStatus.STOPPED  # no limit declared: no guess
