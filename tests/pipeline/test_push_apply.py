"""A pushed state goes through the poll's own diff -> enqueue transaction, behind a guard that applies
it only when it is newer than what is stored: duplicates, reordering, stale events after a poll and
a push committed while a poll is under way give one alert per change, never a step back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.pipeline.enqueue import commit_poll
from bot.pipeline.poll import poll_queue
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.snapshots import queue_view, stored_jobs
from providers import Job, JobStatus
from providers.base import EventReading
from tests.conftest import AWS_ENV
from tests.harness import Bot, queue_config, text_of

ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/"


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, queue_config(sagemaker), env=AWS_ENV, database_url=database_url)
    assert "Subscribed" in text_of(b.command("subscribe ml", channel="C1"))
    yield b
    b.close()


def parsed(bot: Bot, event: dict[str, Any]) -> Job:
    source = bot.runtime.sources["ml"]
    assert isinstance(source, EventReading)
    job = source.job_from_event(event)
    assert job is not None
    return job


def push(bot: Bot, event: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Apply one event and deliver; (applied, stale) job ids."""
    pushed = bot.runtime.worker.apply_pushed("ml", parsed(bot, event))
    assert pushed is not None and pushed.ready
    bot.runtime.worker.deliver()
    return pushed.applied, pushed.stale


def stored(bot: Bot, name: str) -> Job:
    return stored_jobs(bot.runtime.db, "ml", [ARN + name])[ARN + name]


def test_an_event_alerts_once_however_often_it_comes(bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    bot.cycle()  # baseline
    sagemaker.set("bert", "Completed", "Completed")
    done = sagemaker.event("bert")
    assert push(bot, done) == ([ARN + "bert"], [])
    (alert,) = slack.posts()
    assert "running → *succeeded*" in text_of(alert)
    assert push(bot, done) == ([], [])  # SageMaker may send several events per change
    bot.cycle()  # the poll lists the same state: nothing new
    assert len(slack.posts()) == 1


def test_out_of_order_events_never_step_back(bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Starting")
    bot.cycle()
    sagemaker.set("bert", "InProgress", "Training")
    training = sagemaker.event("bert")
    sagemaker.set("bert", "Failed", "Failed", reason="AlgorithmError: boom")
    failed = sagemaker.event("bert")
    assert push(bot, failed) == ([ARN + "bert"], [])
    assert push(bot, training) == ([], [ARN + "bert"])  # older than the stored state
    assert stored(bot, "bert").status is JobStatus.FAILED
    bot.cycle()
    (alert,) = slack.posts()
    assert "queued → *failed*" in text_of(alert) and "AlgorithmError: boom" in text_of(alert)


def test_in_order_events_alert_each_change(bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Starting")
    bot.cycle()
    sagemaker.set("bert", "InProgress", "Training")
    push(bot, sagemaker.event("bert"))
    sagemaker.set("bert", "Completed", "Completed")
    push(bot, sagemaker.event("bert"))
    bot.cycle()
    bot.settle()
    parent, reply = slack.posts()  # the parent is edited to show the job's current status
    assert reply["thread_ts"] == parent["ts"] and "running → *succeeded*" in text_of(reply)
    assert len(set(slack.alert_ids())) == 2


def test_a_stale_event_after_the_poll_changes_nothing(bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Starting")
    bot.cycle()
    sagemaker.set("bert", "InProgress", "Training")
    late = sagemaker.event("bert")
    sagemaker.set("bert", "Completed", "Completed")
    bot.cycle()  # the poll saw the job finish first
    assert push(bot, late) == ([], [ARN + "bert"])
    assert stored(bot, "bert").status is JobStatus.SUCCEEDED
    (alert,) = slack.posts()
    assert "queued → *succeeded*" in text_of(alert)


def test_an_event_before_the_baseline_writes_nothing(bot: Bot, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    bot.runtime.worker.renew()
    pushed = bot.runtime.worker.apply_pushed("ml", parsed(bot, sagemaker.event("bert")))
    assert pushed is not None and not pushed.ready
    assert stored_jobs(bot.runtime.db, "ml", [ARN + "bert"]) == {}


def test_a_push_committed_while_a_poll_is_under_way(bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    """The poll diffed against the store before the push committed; its commit sees the push."""
    sagemaker.add("a", status="InProgress", secondary="Training")
    sagemaker.add("b", status="InProgress", secondary="Training")
    bot.cycle()
    worker = bot.runtime.worker
    source = bot.runtime.sources["ml"]
    sagemaker.set("a", "Completed", "Completed")
    sagemaker.set("b", "InProgress", "Uploading")  # a change within running: stored, never announced
    view = queue_view(bot.runtime.db, "ml")
    listed = poll_queue(source, since=view.since, live=view.live, clock=worker.clock)
    assert listed.jobs is not None
    poll = worker._found("ml", source, view, listed.jobs, listed.started_at)  # diffed: a running -> succeeded
    assert [t.job.name for t in poll.result.transitions] == ["a"]
    sagemaker.set("a", "Completed", "Completed")  # SageMaker touches the job again (a later modification)
    assert push(bot, sagemaker.event("a")) == ([ARN + "a"], [])  # the push announces it first
    fence = worker.lease.fence()
    commit_poll(bot.runtime.db, poll, fence=fence)  # the poll's older listing: dropped, not announced again
    worker.deliver()
    (alert,) = slack.posts()
    assert "running → *succeeded*" in text_of(alert)
    assert stored(bot, "a").updated_at == parsed(bot, sagemaker.event("a")).updated_at
    assert stored(bot, "b").native_status == "InProgress (Uploading)"
    bot.cycle()
    assert len(slack.posts()) == 1


def test_a_poll_committed_after_the_same_change_was_pushed(bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    """Same state by both paths (same LastModifiedTime): the second writer announces nothing."""
    sagemaker.add("a", status="InProgress", secondary="Training")
    bot.cycle()
    worker = bot.runtime.worker
    source = bot.runtime.sources["ml"]
    sagemaker.set("a", "Failed", "Failed", reason="AlgorithmError: boom")
    view = queue_view(bot.runtime.db, "ml")
    listed = poll_queue(source, since=view.since, live=view.live, clock=worker.clock)
    assert listed.jobs is not None
    poll = worker._found("ml", source, view, listed.jobs, listed.started_at)
    push(bot, sagemaker.event("a"))
    commit_poll(bot.runtime.db, poll, fence=worker.lease.fence())
    worker.deliver()
    assert len(slack.posts()) == 1
