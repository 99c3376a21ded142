"""Requests as Slack sends them, to the real HTTP app: signed, forged, stale, malformed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bot.db import Database
from bot.sim.slack import FakeSlack
from bot.sim.slash import slash_command
from bot.tables import Subscription
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
def bot(tmp_path: Path, slack: FakeSlack) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, CONFIG, env={"K": "k", "S": "s"})
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


@pytest.mark.parametrize("skew", [-301, 301])
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
