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
