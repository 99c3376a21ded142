"""Requests as Slack sends them, to the real HTTP app: signed, forged, stale, malformed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from sqlmodel import select

from bot.config import AppConfig, load_config
from bot.db import Database
from bot.sim.slack import FakeSlack
from bot.sim.slash import block_action, event, sign, slash_command
from bot.tables import Subscription
from providers import Job, JobStatus, QueueConfig
from tests.conftest import SECRET
from tests.harness import Bot, text_of

CONFIG = """
[[queues]]
name = "ml"
provider = "sagemaker"
region = "us-east-1"
access_key_env = "K"
secret_key_env = "S"
"""


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, CONFIG, env={"K": "k", "S": "s"}, database_url=database_url)
    yield b
    b.close()


def subscriptions(db: Database) -> int:
    with db.read() as session:
        return len(session.exec(select(Subscription)).all())


def test_help_and_healthz(bot: Bot) -> None:
    assert "/jobs subscribe" in text_of(bot.command(""))
    response = httpx.get(bot.url + "/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_bad_command_gets_usage(bot: Bot) -> None:
    reply = bot.command("subscribe ml sometimes")
    assert reply["response_type"] == "ephemeral"
    assert "unknown status" in text_of(reply) and "Usage: /jobs subscribe" in text_of(reply)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body, {k: v for k, v in headers.items() if not k.startswith("X-Slack")}),
        lambda body, headers: (body.replace(b"subscribe", b"subscribf"), headers),
        lambda body, headers: (body, {**headers, "X-Slack-Signature": headers["X-Slack-Signature"].upper()}),
        lambda body, headers: (body, {**headers, "X-Slack-Request-Timestamp": "abc"}),
        lambda body, headers: (body, {**headers, "X-Slack-Request-Timestamp": "1700000000.5"}),
    ],
)
def test_forged_or_malformed_requests_are_refused(bot: Bot, tamper) -> None:
    body, headers = slash_command(SECRET, "subscribe ml")
    response = bot.post(*tamper(body, headers))
    assert response.status_code == 401
    assert subscriptions(bot.runtime.db) == 0


# 301 s in the past is stale at once; in the future, leave room for the clock to tick before
# the server verifies (Slack's window is 300 s either way).
@pytest.mark.parametrize("skew", [-301, 305])
def test_stale_requests_are_refused(bot: Bot, skew: int) -> None:
    body, headers = slash_command(SECRET, "subscribe ml", timestamp=int(time.time()) + skew)
    assert bot.post(body, headers).status_code == 401
    assert subscriptions(bot.runtime.db) == 0


def test_oversized_body_is_refused(bot: Bot) -> None:
    body, headers = slash_command(SECRET, "x" * 70_000)
    assert bot.post(body, headers).status_code == 413


def test_replayed_subscribe_is_idempotent(bot: Bot) -> None:
    body, headers = slash_command(SECRET, "subscribe ml")
    for _ in range(5):
        assert bot.post(body, headers).status_code == 200
    assert subscriptions(bot.runtime.db) == 1
    assert "Updated the subscription" in text_of(bot.command("subscribe ml failed"))
    assert "failed" in text_of(bot.command("subscriptions"))
    assert "Unsubscribed" in text_of(bot.command("unsubscribe ml"))
    assert "was not subscribed" in text_of(bot.command("unsubscribe ml"))


class SlowSource:
    """A queue whose detail call takes 2.5 s, as a slow provider's would."""

    provider: ClassVar[str] = "slow"

    def __init__(self, config: QueueConfig, *, delay: float) -> None:
        self._config = config
        self.delay = delay
        self.job = Job(queue=config.name, id="j1", name="train", status=JobStatus.RUNNING, native_status="Running")

    @property
    def config(self) -> QueueConfig:
        return self._config

    def list_jobs(self, *, since: datetime | None, live: Sequence[Job]) -> list[Job]:
        return [self.job]

    def get_job(self, job_id: str) -> Job | None:
        time.sleep(self.delay)
        return self.job

    def close(self) -> None:
        pass


def test_twenty_concurrent_commands_with_a_slow_provider_all_ack_fast(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    config = load_config_text(tmp_path, CONFIG)
    bot = Bot(
        tmp_path,
        slack,
        CONFIG,
        env={},
        sources={"ml": SlowSource(config.queues[0], delay=2.5)},
        database_url=database_url,
    )
    try:
        bot.cycle()  # the job is in the store, so `status` goes on to the (slow) provider
        requests = [
            slash_command(SECRET, "status ml train", response_url=slack.response_url(f"s{i}")) for i in range(20)
        ]

        def timed(request: tuple[bytes, dict[str, str]]) -> tuple[int, float]:
            began = time.monotonic()
            status = bot.post(*request).status_code
            return status, time.monotonic() - began

        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(timed, requests))
        assert [status for status, _ in results] == [200] * 20
        assert max(took for _, took in results) < 1.5, results  # Slack's limit is 3 s
        answers = [bot.response(f"s{i}") for i in range(20)]
        assert all("train" in text_of(a) for a in answers)
        assert time.monotonic() - began < 8  # the slow calls ran side by side, not one after another
    finally:
        bot.close()


def load_config_text(tmp_path: Path, text: str) -> AppConfig:
    path = tmp_path / "probe.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize("skew", [0, -301])
def test_forged_or_stale_button_presses_change_nothing(bot: Bot, skew: int) -> None:
    assert "Subscribed" in text_of(bot.command("subscribe ml"))
    body, headers = block_action(SECRET, action_id="unsubscribe", value="ml", timestamp=int(time.time()) + skew)
    if skew == 0:
        headers["X-Slack-Signature"] = sign("wrong-secret", headers["X-Slack-Request-Timestamp"], body)
    assert bot.post(body, headers).status_code == 401
    assert subscriptions(bot.runtime.db) == 1
    body, headers = event(SECRET, {"type": "app_home_opened", "user": "U1", "tab": "home"})
    assert bot.post(body.replace(b"U1", b"U2"), headers).status_code == 401
    assert bot.slack.views == []


def test_app_home_shows_queues_subscriptions_and_recent_alerts(bot: Bot) -> None:
    assert "Subscribed" in text_of(bot.command("subscribe ml failed --match train-*", channel="C1"))
    bot.cycle()  # the provider is unreachable here: the queue shows as failing
    view = bot.open_home(user="U42")
    shown = text_of({"blocks": view["blocks"]})
    assert view["type"] == "home" and view["blocks"][0]["text"]["text"] == "jobwatch"
    assert "*ml* — sagemaker" in shown and "last poll" in shown
    assert "<#C1> · *ml* — failed · jobs matching `train-*`" in shown
    assert "Slack shows the names of the channels you can see" in shown
    assert "No alerts yet." in shown
    assert bot.slack.problems() == []


def test_refused_and_served_requests_never_log_bodies_or_response_urls(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_url = "https://hooks.slack.com/commands/T0001/99/capability-token"
    body, headers = slash_command(SECRET, "subscribe ml", response_url=secret_url)
    assert bot.post(body, {**headers, "X-Slack-Signature": "v0=" + "0" * 64}).status_code == 401
    assert bot.post(body, headers).status_code == 200
    assert "capability-token" not in caplog.text and "legacy-verification-token" not in caplog.text
