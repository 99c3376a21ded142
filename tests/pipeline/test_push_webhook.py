"""Modzy's Job Completion webhook: the web process checks the secret header and stores which job;
the worker reads the job from Modzy and applies it through the poll's own path."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bot.sim.modzy import ModzySim
from bot.sim.slack import FakeSlack
from bot.store.tables import PushedJob
from tests.harness import Bot, text_of

SECRET_HEADER = "X-Webhook-Secret"


@pytest.fixture
def modzy() -> Iterator[ModzySim]:
    sim = ModzySim().start()
    yield sim
    sim.stop()


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim) -> Iterator[Bot]:
    config = f"""
[[queues]]
name = "inference"
provider = "modzy"
endpoint_url = "{modzy.url}"
model = "sentiment"
webhook = true
webhook_secret_header = "{SECRET_HEADER}"
webhook_secret_env = "MODZY_WEBHOOK_SECRET"
"""
    env = {"MODZY_API_KEY": modzy.api_key}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODZY_WEBHOOK_SECRET", "s3cret")
        b = Bot(tmp_path, slack, config, env=env, database_url=database_url)
    modzy.webhook = (f"{b.url}/webhooks/modzy/inference", SECRET_HEADER, "s3cret")
    assert "Subscribed" in text_of(b.command("subscribe inference", channel="C1"))
    b.cycle()  # baseline
    yield b
    b.close()


def owed(bot: Bot) -> int:
    with bot.runtime.db.read() as session:
        return len(session.exec(select(PushedJob)).all())


def counted(bot: Bot, name: str, **labels: str) -> float:
    return bot.runtime.metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_completion_reaches_its_channel_through_the_webhook(bot: Bot, slack: FakeSlack, modzy: ModzySim) -> None:
    job = modzy.add("sentiment", "IN_PROGRESS")
    bot.cycle()
    start = len(slack.posts())
    modzy.set(job.ident, "COMPLETED")  # Modzy POSTs its webhook
    assert modzy.delivered == [200] and owed(bot) == 1
    assert bot.runtime.worker.webhooks() == 1
    bot.runtime.worker.deliver()
    (alert,) = slack.posts()[start:]
    assert "running → *succeeded*" in text_of(alert)
    assert owed(bot) == 0
    assert counted(bot, "jobwatch_push_events_total", queue="inference", outcome="applied") == 1
    assert counted(bot, "jobwatch_push_lag_seconds_count", queue="inference") == 1
    bot.cycle()  # the reconciliation poll finds nothing new
    assert len(slack.posts()) == start + 1


def test_a_repeated_webhook_alerts_once(bot: Bot, slack: FakeSlack, modzy: ModzySim) -> None:
    job = modzy.add("sentiment", "IN_PROGRESS")
    bot.cycle()
    start = len(slack.posts())
    modzy.set(job.ident, "ERROR", failed=10, completed=0)
    modzy._notify(job.ident)  # delivered again before the worker read it
    assert owed(bot) == 1
    bot.runtime.worker.webhooks()
    modzy._notify(job.ident)  # and once more after
    bot.runtime.worker.webhooks()
    bot.runtime.worker.deliver()
    (alert,) = slack.posts()[start:]
    assert "*failed*" in text_of(alert)
    assert counted(bot, "jobwatch_push_events_total", queue="inference", outcome="duplicate") == 1


@pytest.mark.sqlite_only
def test_refused_malformed_and_foreign_webhooks(bot: Bot, modzy: ModzySim) -> None:
    job = modzy.add("sentiment", "COMPLETED")
    url = f"{bot.url}/webhooks/modzy/inference"
    payload = modzy.completion(job.ident)
    assert httpx.post(url, json=payload, timeout=10).status_code == 401  # no secret
    assert httpx.post(url, json=payload, headers={SECRET_HEADER: "guess"}, timeout=10).status_code == 401
    secret = {SECRET_HEADER: "s3cret"}
    assert httpx.post(url, content=b"not json", headers=secret, timeout=10).status_code == 400
    assert httpx.post(url, json={"job": {"model": {}}}, headers=secret, timeout=10).status_code == 400
    other = modzy.add("translation", "COMPLETED")
    answer = httpx.post(url, json=modzy.completion(other.ident), headers=secret, timeout=10)
    assert answer.status_code == 200 and answer.json()["ignored"] == "another model"
    assert httpx.post(f"{bot.url}/webhooks/modzy/nope", json=payload, headers=secret, timeout=10).status_code == 404
    assert httpx.get(url, timeout=10).status_code == 405
    assert owed(bot) == 0
    channel = "webhook:inference"
    assert counted(bot, "jobwatch_push_messages_total", channel=channel, outcome="refused") == 2
    assert counted(bot, "jobwatch_push_messages_total", channel=channel, outcome="malformed") == 2
    assert counted(bot, "jobwatch_push_messages_total", channel=channel, outcome="foreign") == 1


def test_a_read_that_fails_is_tried_again(bot: Bot, slack: FakeSlack, modzy: ModzySim) -> None:
    job = modzy.add("sentiment", "IN_PROGRESS")
    bot.cycle()
    start = len(slack.posts())
    modzy.set(job.ident, "COMPLETED")
    modzy.faults.append("auth")  # the read fails (a key rotated meanwhile, say)
    assert bot.runtime.worker.webhooks() == 0 and owed(bot) == 1
    assert bot.runtime.worker.webhooks() == 1 and owed(bot) == 0
    bot.runtime.worker.deliver()
    assert len(slack.posts()) == start + 1


def test_a_completion_within_two_seconds_while_polls_wait_five_minutes(
    bot: Bot, slack: FakeSlack, modzy: ModzySim
) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    assert bot.runtime.config.interval(bot.runtime.config.queues[0], bot.settings) == 300
    job = modzy.add("sentiment", "IN_PROGRESS")
    bot.cycle()
    start = len(slack.posts())
    scheduler = BackgroundScheduler(timezone="UTC")
    bot.runtime.worker.schedule(scheduler)
    scheduler.start()
    try:
        time.sleep(1.5)  # the schedule's first polls; the next in 5 minutes
        began = time.monotonic()
        modzy.set(job.ident, "COMPLETED")
        while len(slack.posts()) == start and time.monotonic() - began < 10:
            time.sleep(0.02)
        took = time.monotonic() - began
    finally:
        scheduler.shutdown(wait=True)
    (alert,) = slack.posts()[start:]
    assert "running → *succeeded*" in text_of(alert)
    assert took < 2.5, took
    assert json.loads(json.dumps(modzy.delivered)) == [200]
