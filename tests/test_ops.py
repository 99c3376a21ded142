"""Operations endpoints through the real HTTP app: /metrics counts what happened, /readyz says
whether the process can do its job (store, Slack, fresh polls)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.clock import utcnow
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack, Fault
from tests.conftest import AWS_ENV
from tests.harness import Bot, MovableClock, queue_config


@pytest.fixture
def bot(tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, queue_config(sagemaker), env=AWS_ENV)
    yield b
    b.close()


def samples(bot: Bot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(bot.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_metrics_count_polls_alerts_commands_and_read_the_outbox(
    bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    bot.command("subscribe ml", channel="C1")
    bot.command("list ml")
    bot.command("nonsense")
    bot.cycle()  # baseline
    sagemaker.set("bert", "Completed", "Completed")
    bot.runtime.worker.renew()
    bot.runtime.worker.poll_all()  # one alert enqueued, not yet delivered
    before = samples(bot)
    assert before[("jobwatch_outbox_items", (("state", "pending"),))] == 1
    assert 0 < before[("jobwatch_outbox_oldest_pending_age_seconds", ())] < 60  # enqueued just now, not clamped
    assert before[("jobwatch_channel_due_items", (("channel", "C1"),))] == 1  # what each channel waits for
    assert 0 <= before[("jobwatch_channel_oldest_due_age_seconds", (("channel", "C1"),))] < 60
    bot.runtime.worker.deliver()

    got = samples(bot)
    assert got[("jobwatch_polls_total", (("outcome", "ok"), ("queue", "ml")))] == 2
    assert got[("jobwatch_poll_duration_seconds_count", (("queue", "ml"),))] == 2
    assert got[("jobwatch_alerts_enqueued_total", (("queue", "ml"),))] == 1
    assert got[("jobwatch_alerts_total", (("outcome", "sent"),))] == 1
    assert got[("jobwatch_outbox_items", (("state", "pending"),))] == 0
    assert got[("jobwatch_outbox_items", (("state", "sent"),))] == 1
    assert got[("jobwatch_outbox_oldest_pending_age_seconds", ())] == 0
    assert not [k for k in got if k[0].startswith("jobwatch_channel_")]  # no channel is owed anything
    assert 0 <= got[("jobwatch_last_successful_poll_age_seconds", (("queue", "ml"),))] < 60
    assert got[("jobwatch_queue_consecutive_failures", (("queue", "ml"),))] == 0
    assert got[("jobwatch_store_up", ())] == 1
    assert got[("jobwatch_slack_api_calls_total", (("method", "chat.postMessage"),))] == 1
    assert got[("jobwatch_command_duration_seconds_count", (("subcommand", "subscribe"),))] == 1
    assert got[("jobwatch_command_duration_seconds_count", (("subcommand", "list"),))] == 1
    assert got[("jobwatch_command_duration_seconds_count", (("subcommand", "invalid"),))] == 1


def test_metrics_count_failed_polls_and_slack_errors(bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    bot.command("subscribe ml", channel="C1")
    bot.cycle()
    sagemaker.set("bert", "Failed", "Failed", reason="boom")
    slack.members = {"C2": {"T0001"}}  # the bot is no longer in C1
    bot.cycle()
    sagemaker.faults.append("html")  # a proxy's error page instead of the listing
    bot.cycle()
    got = samples(bot)
    assert got[("jobwatch_polls_total", (("outcome", "failed"), ("queue", "ml")))] == 1
    assert got[("jobwatch_poll_failures_total", (("queue", "ml"),))] == 1
    assert got[("jobwatch_queue_consecutive_failures", (("queue", "ml"),))] == 1
    errors = {k: v for k, v in got.items() if k[0] == "jobwatch_slack_api_errors_total"}
    assert errors == {
        ("jobwatch_slack_api_errors_total", (("error", "not_in_channel"), ("method", "chat.postMessage"))): 1
    }
    assert got[("jobwatch_alerts_total", (("outcome", "dead"),))] == 1


def test_metrics_show_how_long_a_held_channel_has_waited(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    """A channel Slack holds back (Retry-After) while another is served: the age of its oldest due
    row grows, labelled with the channel, which is how an operator sees a starved channel."""
    clock = MovableClock()
    held = Bot(tmp_path, slack, queue_config(sagemaker), env=AWS_ENV, clock=clock)
    try:
        for name in ("bert", "gpt"):
            sagemaker.add(name, status="InProgress", secondary="Training")
        held.command("subscribe ml", channel="C1")
        held.command("subscribe ml", channel="C2")
        held.cycle()
        slack.script("chat.postMessage", Fault(retry_after=120, channel="C1"))
        for name in ("bert", "gpt"):
            sagemaker.set(name, "Completed", "Completed")
        held.cycle()  # C2 gets both; C1's first is refused, and C1 waits for Retry-After
        clock.offset += timedelta(seconds=30)
        got = samples(held)
    finally:
        held.close()
    assert len(slack.posts("C2")) == 2 and slack.posts("C1") == []
    assert got[("jobwatch_channel_due_items", (("channel", "C1"),))] == 1  # the other one is not due yet
    assert got[("jobwatch_channel_oldest_due_age_seconds", (("channel", "C1"),))] >= 30
    assert ("jobwatch_channel_due_items", (("channel", "C2"),)) not in got


def test_readyz_is_ok_when_store_slack_and_polls_are(bot: Bot) -> None:
    bot.cycle()
    response = httpx.get(bot.url + "/readyz", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["database"] is True and body["slack"] is True
    assert set(body["last_poll_age_s"]) == {"ml"} and body["last_poll_age_s"]["ml"] < 60
    assert httpx.get(bot.url + "/healthz", timeout=5).status_code == 200


def test_readyz_caches_auth_test(bot: Bot, slack: FakeSlack) -> None:
    calls = ("jobwatch_slack_api_calls_total", (("method", "auth.test"),))
    for _ in range(3):
        assert httpx.get(bot.url + "/readyz", timeout=10).status_code == 200
    assert samples(bot)[calls] == 1


def test_readyz_fails_when_slack_is_down(bot: Bot, slack: FakeSlack) -> None:
    bot.ready.slack_ttl = 0  # no cached answer
    assert httpx.get(bot.url + "/readyz", timeout=10).status_code == 200
    slack.stop()
    response = httpx.get(bot.url + "/readyz", timeout=10)
    assert response.status_code == 503
    assert response.json()["slack"] is False and "slack:" in response.json()["reason"]
    assert httpx.get(bot.url + "/healthz", timeout=5).status_code == 200  # still alive


def test_readyz_fails_when_the_database_is_gone(bot: Bot, tmp_path: Path) -> None:
    assert httpx.get(bot.url + "/readyz", timeout=10).status_code == 200
    bot.runtime.db.dispose()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"bot.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "bot.db").mkdir()  # nothing can open it now
    try:
        response = httpx.get(bot.url + "/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json()["database"] is False and "database" in response.json()["reason"]
        metrics = httpx.get(bot.url + "/metrics", timeout=5)
        assert metrics.status_code == 200 and "jobwatch_store_up 0.0" in metrics.text
    finally:
        shutil.rmtree(tmp_path / "bot.db")


def test_readyz_fails_when_a_queue_has_not_polled_for_three_intervals(bot: Bot) -> None:
    bot.cycle()
    bot.ready.clock = lambda: utcnow() + timedelta(seconds=181)  # default interval 60 s
    response = httpx.get(bot.url + "/readyz", timeout=10)
    assert response.status_code == 503
    assert "queue ml: no successful poll" in response.json()["reason"]
