"""Alerts that know what is normal, end to end: failure causes, history, slow and stuck jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import render
from bot.sim.batch import BatchSim
from bot.sim.slack import FakeSlack
from providers import Job, JobStatus
from tests.conftest import AWS_ENV
from tests.harness import Bot, text_of

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
