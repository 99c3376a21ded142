"""AWS Batch end to end: a service job that leaves RUNNING alerts its channel exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sim.batch import BatchSim
from bot.sim.slack import FakeSlack
from tests.harness import Bot, SimQueue, sim_queue, text_of


@pytest.fixture
def gpu() -> Iterator[SimQueue]:
    q = sim_queue("batch")
    yield q
    q.sim.stop()


@pytest.fixture
def batch(gpu: SimQueue) -> BatchSim:
    sim: BatchSim = gpu.sim
    return sim


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, gpu: SimQueue) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, gpu.queue("gpu"), env=gpu.env, database_url=database_url)
    yield b
    b.close()


def test_batch_transitions_reach_the_channel_once(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    job = batch.add("llama-sft", "RUNNABLE")
    bot.command("subscribe gpu", channel="C1")
    bot.cycle()  # baseline
    batch.set(job.job_id, "SCHEDULED")
    batch.set(job.job_id, "RUNNABLE")  # capacity flap: both queued, so quiet
    bot.cycle()
    assert slack.posts() == []
    batch.set(job.job_id, "RUNNING")
    bot.cycle()
    batch.set(job.job_id, "FAILED", reason="AlgorithmError: NaN loss")
    bot.cycle()
    bot.cycle()
    posted = [params["text"] for method, params in slack.calls if method == "chat.postMessage"]
    assert posted == ["llama-sft in gpu: RUNNING", "llama-sft in gpu: FAILED"]
    parent, reply = slack.posts("C1")
    assert "NaN loss" in text_of(reply) and reply["thread_ts"] == parent["ts"]
    assert "now *failed*" in text_of(parent)  # the parent was edited to the current status
    assert "llama-sft" in text_of(bot.command("list gpu failed"))
    status = text_of(bot.command("status gpu llama-sft"))
    assert "failed" in status and "NaN loss" in status


def posted(slack: FakeSlack) -> list[str]:
    return [params["text"] for method, params in slack.calls if method == "chat.postMessage"]


def retry_bot(tmp_path: Path, database_url: str, slack: FakeSlack, gpu: SimQueue) -> Bot:
    return Bot(tmp_path, slack, gpu.queue("gpu"), env=gpu.env, database_url=database_url)


SPOT = "Host EC2 (instance i-0abc) terminated."


def test_batch_retries_stay_quiet_until_the_final_failure(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    job = batch.add("llama-sft", "RUNNABLE", attempts=3)
    bot.command("subscribe gpu", channel="C1")
    bot.cycle()  # baseline
    batch.set(job.job_id, "RUNNING")
    bot.cycle()
    for _ in range(2):  # attempts 1 and 2 fail and are retried; the listing shows RUNNABLE, then RUNNING
        assert batch.fail_attempt(job.job_id, SPOT)
        bot.cycle()
        batch.set(job.job_id, "STARTING")
        batch.set(job.job_id, "RUNNING")
        bot.cycle()
    assert not batch.fail_attempt(job.job_id, "AlgorithmError: NaN loss")
    bot.cycle()
    bot.cycle()
    assert posted(slack) == [
        "llama-sft in gpu: RUNNING",
        "attempt 1 of 3 failed: spot_interruption, retrying",
        "attempt 2 of 3 failed: spot_interruption, retrying",
        "llama-sft in gpu: FAILED",
    ]
    parent, *replies = slack.posts("C1")
    assert all(r["thread_ts"] == parent["ts"] for r in replies)  # the notes went to the job's thread only
    assert "NaN loss" in text_of(replies[-1]) and "attempt 3 of 3" in text_of(replies[-1])
    assert "retry_cause" not in text_of(replies[-1])  # the attempt entries in words, not as key: value
    # Describes only at the two attempt boundaries, not every cycle for every job, and once for the
    # job's runtime limit (timeoutConfig, read once per job: bot/pipeline/limits.py).
    assert batch.calls["describeservicejob"] == 3


def test_batch_success_after_a_retry_is_an_ordinary_alert(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    job = batch.add("llama-sft", "RUNNABLE", attempts=2)
    bot.command("subscribe gpu", channel="C1")
    bot.cycle()  # baseline
    batch.set(job.job_id, "RUNNING")
    bot.cycle()
    # The failed attempt and the next one's start both happen between two polls: the listing
    # shows the job RUNNING again, under another training job.
    assert batch.fail_attempt(job.job_id, "CannotPullContainerError: pull image manifest has been retried")
    batch.set(job.job_id, "STARTING")
    bot.cycle()
    batch.set(job.job_id, "SUCCEEDED")
    bot.cycle()
    bot.cycle()
    assert posted(slack) == [
        "llama-sft in gpu: RUNNING",
        "attempt 1 of 2 failed: image_pull, retrying",
        "llama-sft in gpu: SUCCEEDED",
    ]
    assert batch.calls["describeservicejob"] == 2  # the attempt boundary, and the runtime limit once


def test_batch_retry_note_once_across_a_restart(
    tmp_path: Path, database_url: str, slack: FakeSlack, gpu: SimQueue, batch: BatchSim
) -> None:
    job = batch.add("llama-sft", "RUNNABLE", attempts=3)
    first = retry_bot(tmp_path, database_url, slack, gpu)
    first.command("subscribe gpu", channel="C1")
    first.cycle()  # baseline
    batch.set(job.job_id, "RUNNING")
    first.cycle()
    assert batch.fail_attempt(job.job_id, SPOT)
    first.runtime.worker.renew()
    first.runtime.worker.poll_all()  # the note is enqueued; the process dies before delivering it
    first.close()
    again = retry_bot(tmp_path, database_url, slack, gpu)
    try:
        again.cycle()
        batch.set(job.job_id, "RUNNING")
        again.cycle()
        again.cycle()
    finally:
        again.close()
    assert posted(slack) == ["llama-sft in gpu: RUNNING", "attempt 1 of 3 failed: spot_interruption, retrying"]
