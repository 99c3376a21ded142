"""Who may change what: admins, per-queue channel lists, DMs, audit, and workspaces kept apart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.tables import AuditEntry, Mute, OutboxItem, Subscription
from tests.conftest import AWS_ENV
from tests.harness import Bot, queue_config, text_of

ADMIN = "UADMIN"


@pytest.fixture
def guarded(tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim) -> Iterator[Bot]:
    extra = f"""
[access]
admins = ["{ADMIN}"]

[[queues]]
name = "prod"
provider = "sagemaker"
region = "us-east-1"
endpoint_url = "{sagemaker.url}"
access_key_env = "TEST_AWS_KEY"
secret_key_env = "TEST_AWS_SECRET"
channels = ["CPROD"]
"""
    b = Bot(tmp_path, slack, queue_config(sagemaker, extra), env=AWS_ENV, database_url=database_url)
    yield b
    b.close()


def audit(bot: Bot) -> list[tuple[str, str, str, str, str]]:
    with bot.runtime.db.read() as session:
        return [
            (a.user_id, a.channel_id, a.action, a.queue, a.outcome)
            for a in session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()  # type: ignore[arg-type]
        ]


def count(bot: Bot, table: type) -> int:
    with bot.runtime.db.read() as session:
        return len(session.exec(select(table)).all())


def test_non_admin_changes_are_refused_and_audited(guarded: Bot) -> None:
    for text in ("subscribe ml", "unsubscribe ml", "mute ml 1h", "unmute ml"):
        reply = text_of(guarded.command(text, channel="C1", user="UGUEST"))
        assert "only the bot's admins may change" in reply, text
    assert count(guarded, Subscription) == 0 and count(guarded, Mute) == 0
    assert audit(guarded) == [
        ("UGUEST", "C1", f"{verb} (command)", "ml", "refused")
        for verb in ("subscribe", "unsubscribe", "mute", "unmute")
    ]
    assert "ml" in text_of(guarded.command("queues", user="UGUEST"))  # everyone may read
    assert "Subscribed" in text_of(guarded.command("subscribe ml", channel="C1", user=ADMIN))
    assert audit(guarded)[-1] == (ADMIN, "C1", "subscribe (command)", "ml", "ok")


@pytest.mark.sqlite_only
def test_queue_channel_allow_list(guarded: Bot) -> None:
    reply = text_of(guarded.command("subscribe prod", channel="COTHER", user=ADMIN))
    assert "queue `prod` may not be subscribed or muted from this channel" in reply
    assert "Subscribed" in text_of(guarded.command("subscribe prod", channel="CPROD", user=ADMIN))
    assert [a[4] for a in audit(guarded)] == ["refused", "ok"]


@pytest.mark.sqlite_only
def test_direct_messages_get_a_clear_answer(guarded: Bot) -> None:
    reply = text_of(guarded.command("subscribe ml", channel="D0123", user=ADMIN))
    assert "not direct messages" in reply and "run this in the channel" in reply
    assert count(guarded, Subscription) == 0
    assert "/jobs subscribe" in text_of(guarded.command("help", channel="D0123"))  # reading works in DMs


def test_bad_input_stores_nothing(guarded: Bot) -> None:
    for text in ("subscribe ml\u202e", "subscribe <!channel>", "subscribe &lt;@U1&gt;", "x" * 501, "mute ml\x00 1h"):
        reply = guarded.command(text, channel="C1", user=ADMIN)
        assert reply["response_type"] == "ephemeral" and ":warning:" in text_of(reply), text
    assert count(guarded, Subscription) == 0 and audit(guarded) == []
    assert guarded.slack.problems() == []


def test_two_workspaces_with_the_same_channel_and_queue_stay_apart(ml: Bot, sagemaker: SageMakerSim) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    assert "Subscribed" in text_of(ml.command("subscribe ml failed", channel="C1", team="T0001"))
    assert "This channel has no subscriptions" in text_of(ml.command("subscriptions", channel="C1", team="T0002"))
    assert "was not subscribed" in text_of(ml.command("unsubscribe ml", channel="C1", team="T0002"))
    assert "Muted ml" in text_of(ml.command("mute ml 1h", channel="C1", team="T0002"))
    assert "Subscribed" in text_of(ml.command("subscribe ml", channel="C1", team="T0002"))
    mine = text_of(ml.command("subscriptions", channel="C1", team="T0001"))
    assert "failed" in mine and "muted" not in mine
    assert "1 subscribed channel(s)" in text_of(ml.command("queues", team="T0001"))
    theirs = text_of(ml.command("subscriptions", channel="C1", team="T0002"))
    assert "every change" in theirs and "muted until" in theirs
    assert "Nothing of `ml` is muted" in text_of(ml.command("unmute ml", channel="C1", team="T0001"))
    with ml.runtime.db.read() as session:
        (mute,) = session.exec(select(Mute)).all()
    assert mute.team_id == "T0002"
    ml.runtime.worker.renew()
    ml.runtime.worker.poll_all()  # baseline
    sagemaker.set("bert", "Failed", "Failed")
    ml.runtime.worker.poll_all()
    with ml.runtime.db.read() as session:
        held = {(r.team_id, r.channel_id, r.state) for r in session.exec(select(OutboxItem)).all()}
    assert held == {("T0001", "C1", "pending"), ("T0002", "C1", "muted")}  # team B's mute leaves team A alone
    home = text_of({"blocks": ml.open_home(team="T0001")["blocks"]})
    assert "<#C1> · *ml* — failed" in home and "every change" not in home
