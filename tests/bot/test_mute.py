"""Mutes and the alert buttons, through the real HTTP app: held alerts, one summary, idempotency."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.sim.slash import slash_command
from bot.store.tables import AuditEntry, Mute, OutboxItem, Subscription
from tests.conftest import SECRET
from tests.harness import Bot, text_of
from tests.harness import MovableClock as Clock


def rows(bot: Bot, table: type) -> list[Any]:
    with bot.runtime.db.read() as session:
        return list(session.exec(select(table)).all())


def start(bot: Bot, sagemaker: SageMakerSim, *names: str) -> None:
    """Subscribe C1 to `ml`, with these jobs running at the baseline."""
    for name in names:
        sagemaker.add(name, status="InProgress", secondary="Training")
    assert "Subscribed" in text_of(bot.command("subscribe ml", channel="C1"))
    bot.cycle()


def test_muted_alerts_are_recorded_not_posted_then_summarised_on_unmute(
    ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    start(ml, sagemaker, "a", "b")
    reply = text_of(ml.command("mute ml 2h", channel="C1"))
    assert "Muted ml in this channel until" in reply
    sagemaker.set("a", "Completed", "Completed")
    sagemaker.set("b", "Failed", "Failed", reason="OOM")
    ml.cycle()
    assert slack.posts() == []
    assert sorted(r.state for r in rows(ml, OutboxItem)) == ["muted", "muted"]
    assert ":no_bell: ml muted until" in text_of(ml.command("subscriptions", channel="C1"))

    assert "2 alert(s) were held back" in text_of(ml.command("unmute ml", channel="C1"))
    assert rows(ml, Mute) == []
    ml.cycle()
    (summary,) = slack.posts("C1")
    assert "Mute of ml ended (unmuted): 2 alerts were muted meanwhile" in text_of(summary)
    assert "Nothing of `ml` is muted" in text_of(ml.command("unmute ml", channel="C1"))
    assert len(slack.posts()) == 1  # a second unmute owes nothing


def test_job_mute_expires_with_one_summary(ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock) -> None:
    start(ml, sagemaker, "quiet", "loud")
    assert "Muted job quiet in ml" in text_of(ml.command("mute ml quiet 30m", channel="C1"))
    assert "Mute extended" in text_of(ml.command("mute ml quiet 1h", channel="C1"))
    assert len(rows(ml, Mute)) == 1
    sagemaker.set("quiet", "Completed", "Completed")
    sagemaker.set("loud", "Completed", "Completed")
    ml.cycle()
    assert ["loud" in p["text"] for p in slack.posts()] == [True]  # the other job still alerts

    clock.offset = timedelta(hours=2)
    ml.runtime.worker.renew()
    ml.runtime.worker.deliver()
    ml.runtime.worker.deliver()  # a second round finds nothing more to say
    summary = slack.posts()[-1]
    assert len(slack.posts()) == 2 and "Mute of job quiet in ml ended (expired): 1 alert was muted" in summary["text"]
    assert rows(ml, Mute) == []


def test_an_alert_held_by_a_queue_mute_and_a_job_mute_is_counted_once(
    ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock
) -> None:
    start(ml, sagemaker, "a", "b")
    ml.command("mute ml 1h", channel="C1")
    ml.command("mute ml a 30m", channel="C1")
    sagemaker.set("a", "Completed", "Completed")
    sagemaker.set("b", "Completed", "Completed")
    ml.cycle()
    assert slack.posts() == []
    clock.offset = timedelta(minutes=45)  # the job mute ends first, then the queue mute
    ml.runtime.worker.renew()
    ml.runtime.worker.deliver()
    assert "1 alert was muted" in slack.posts()[-1]["text"]
    clock.offset = timedelta(hours=2)
    ml.runtime.worker.renew()
    ml.runtime.worker.deliver()
    assert "Mute of ml ended (expired): 1 alert was muted" in slack.posts()[-1]["text"]  # not 2: b only
    assert len(slack.posts()) == 2


def test_replayed_mute_is_idempotent_and_audited(ml: Bot, sagemaker: SageMakerSim) -> None:
    start(ml, sagemaker)
    body, headers = slash_command(SECRET, "mute ml 1d", channel="C1")
    for _ in range(5):
        assert ml.post(body, headers).status_code == 200
    (mute,) = rows(ml, Mute)
    assert mute.trigger_id and (mute.until - mute.created_at) == timedelta(days=1)
    actions = [a.action for a in rows(ml, AuditEntry)]
    assert actions == ["subscribe (command)", "mute (command)"]  # a replay is not a second change


@pytest.mark.sqlite_only
def test_bad_durations_are_refused_with_usage(ml: Bot) -> None:
    for text in ("mute ml", "mute ml 0m", "mute ml 31d", "mute ml 2 hours", "mute ml a b c d"):
        reply = text_of(ml.command(text, channel="C1"))
        assert "Usage: /jobs mute &lt;queue&gt; [job] &lt;duration&gt;" in reply, text
    assert "no job `nope` in queue `ml`" in text_of(ml.command("mute ml nope 1h", channel="C1"))
    assert rows(ml, Mute) == []


def test_alert_buttons_mute_the_job_and_unsubscribe(ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    start(ml, sagemaker, "bert")
    sagemaker.set("bert", "Stopping", "Stopping")
    ml.cycle()
    (alert,) = slack.posts()
    (actions,) = [b for b in alert["blocks"] if b["type"] == "actions"]
    buttons = {e["action_id"]: e for e in actions["elements"]}
    assert set(buttons) == {"mute_job", "watch_job", "unsubscribe", "console_link"}
    assert buttons["console_link"]["url"].startswith("https://")

    answer = ml.press("mute_job", buttons["mute_job"]["value"], channel="C1")
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert "Muted job bert in ml" in text_of(answer)
    (mute,) = rows(ml, Mute)
    assert mute.job_id == json.loads(buttons["mute_job"]["value"])["job"]
    assert mute.until - mute.created_at == timedelta(hours=1)
    sagemaker.set("bert", "Stopped", "Stopped")
    ml.cycle()
    assert len(slack.posts()) == 1

    assert "Unsubscribed from `ml`" in text_of(ml.press("unsubscribe", buttons["unsubscribe"]["value"], channel="C1"))
    assert rows(ml, Subscription) == []
    assert [a.action for a in rows(ml, AuditEntry)][-2:] == ["mute (button)", "unsubscribe (button)"]
    assert slack.problems() == []


@pytest.mark.sqlite_only
def test_damaged_button_values_are_refused(ml: Bot, sagemaker: SageMakerSim) -> None:
    start(ml, sagemaker)
    for value in ("not json", '{"queue": "<!channel>", "job": "x"}', '{"queue": "ml"}', "\u202eml"):
        answer = ml.press("mute_job", value, channel="C1")
        assert ":warning:" in text_of(answer), value
    assert "control or invisible" in text_of(ml.press("unsubscribe", "ml\u200b", channel="C1"))
    assert rows(ml, Mute) == [] and len(rows(ml, Subscription)) == 1
    assert slack_safe(ml)


def slack_safe(bot: Bot) -> bool:
    return bot.slack.problems() == []
