"""Baseline -> transitions -> exactly the expected alerts in exactly the subscribed channels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from tests.conftest import AWS_ENV
from tests.harness import Bot, text_of


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim) -> Iterator[Bot]:
    config = f"""
[[queues]]
name = "ml-training"
provider = "sagemaker"
region = "us-east-1"
endpoint_url = "{sagemaker.url}"
access_key_env = "TEST_AWS_KEY"
secret_key_env = "TEST_AWS_SECRET"
"""
    b = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url)
    yield b
    b.close()


def test_alert_flow(bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    sagemaker.add("already-done", status="Completed", secondary="Completed")
    sagemaker.add("bert-1", status="InProgress", secondary="Training")
    assert "Subscribed" in text_of(bot.command("subscribe ml-training", channel="C1"))
    assert "Subscribed" in text_of(bot.command("subscribe ml-training failed", channel="C2"))

    bot.cycle()  # baseline: nothing announced
    assert slack.posts() == []

    sagemaker.set("bert-1", "Completed", "Completed")
    bot.cycle()
    (alert,) = slack.posts()
    assert alert["channel"] == "C1"  # C2 only wants failures; C3 never subscribed
    assert "bert-1" in alert["text"] and "ml-training" in alert["text"] and "Completed" in alert["text"]
    assert "running → *succeeded*" in text_of(alert)

    bot.cycle()  # nothing changed: nothing posted
    assert len(slack.posts()) == 1

    sagemaker.add("bert-2", status="InProgress", secondary="Starting")
    bot.cycle()  # a job first seen after the baseline is announced (to C1 only: it is queued)
    assert [m["channel"] for m in slack.posts()] == ["C1", "C1"]

    sagemaker.set("bert-2", "Failed", "Failed", reason="AlgorithmError: CUDA out of memory")
    bot.cycle()
    posts = slack.posts()
    assert len(posts) == 4
    failed_c1 = next(m for m in posts[2:] if m["channel"] == "C1")
    failed_c2 = next(m for m in posts[2:] if m["channel"] == "C2")
    # C1 saw bert-2 before: a thread reply, broadcast because it failed; the parent is updated.
    assert failed_c1["thread_ts"] == posts[1]["ts"] and failed_c1["reply_broadcast"]
    assert any(u["ts"] == posts[1]["ts"] and "failed" in text_of(u) for u in slack.updates)
    # C2 never saw bert-2: a new parent. Both carry the reason from DescribeTrainingJob.
    assert failed_c2["thread_ts"] is None
    for message in (failed_c1, failed_c2):
        assert "CUDA out of memory" in text_of(message)
    # every alert carries a distinct id per channel in its metadata
    assert len(set(zip((m["channel"] for m in posts), slack.alert_ids(), strict=True))) == 4


def test_list_and_status_commands(bot: Bot, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert-a", status="Completed", secondary="Completed")
    sagemaker.add("bert-b", status="InProgress", secondary="Training")
    reply = text_of(bot.command("list ml-training"))
    assert "No poll of this queue has completed yet" in reply
    bot.cycle()
    reply = text_of(bot.command("list ml-training"))
    assert "bert-a" in reply and "bert-b" in reply
    assert "bert-a" not in text_of(bot.command("list ml-training running"))
    assert "bert-b" in text_of(bot.command("list ml-training inprogress"))  # native, case-insensitive
    sagemaker.set("bert-b", "Failed", "Failed", reason="OOM")
    status = text_of(bot.command("status ml-training bert-b"))  # fresh from DescribeTrainingJob
    assert "failed" in status and "OOM" in status
    assert "unknown queue `nope`" in text_of(bot.command("list nope"))
    assert "no job `zzz`" in text_of(bot.command("status ml-training zzz"))
    queues = text_of(bot.command("queues"))
    assert "ml-training" in queues and "sagemaker" in queues and "ok" in queues


def test_failing_provider_alerts_nothing_and_shows_in_queues(
    bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    sagemaker.add("j", status="InProgress", secondary="Training")
    bot.command("subscribe ml-training", channel="C1")
    bot.cycle()
    for _ in range(30):
        sagemaker.fail_next(500, "InternalFailure")
    bot.cycle()
    assert slack.posts() == []
    assert "failing (1 polls)" in text_of(bot.command("queues"))
    sagemaker.errors.clear()
    sagemaker.set("j", "Completed", "Completed")
    bot.cycle()
    assert len(slack.posts()) == 1
    assert ":large_green_circle: ok" in text_of(bot.command("queues"))
