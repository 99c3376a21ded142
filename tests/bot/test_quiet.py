"""Quiet hours that defer: alerts held in the window, one "While you were away" digest at its end,
cards brought up to date; across restarts inside the window and at its end; never posted twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.core.clock import utcnow
from bot.core.config import ConfigError, parse_config
from bot.core.quiet import parse_window, window_end
from bot.runtime import reload_subscriptions
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.slack import grammar
from bot.store.tables import OutboxItem, Subscription
from tests.conftest import AWS_ENV
from tests.harness import Bot, queue_config, text_of
from tests.harness import MovableClock as Clock

EVENING = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)  # before the 20:00-08:00 window
NIGHT = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # inside it
MORNING = datetime(2026, 12, 2, 8, 1, tzinfo=UTC)  # just after it


def at(clock: Clock, moment: datetime) -> None:
    clock.offset = moment - utcnow()


def rows(bot: Bot) -> list[OutboxItem]:
    with bot.runtime.db.read() as session:
        return list(session.exec(select(OutboxItem).order_by(OutboxItem.id)).all())  # type: ignore[arg-type]


def restart(bot: Bot, tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock, url: str) -> Bot:
    bot.close()
    return Bot(tmp_path, slack, queue_config(sagemaker), env=AWS_ENV, clock=clock, database_url=url)


def away(slack: FakeSlack) -> list[dict[str, Any]]:
    return [p for p in slack.posts("C1") if "While you were away" in p["text"]]


def test_held_alerts_survive_restarts_and_are_posted_once_as_one_digest(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock
) -> None:
    at(clock, EVENING)
    bot = Bot(tmp_path, slack, queue_config(sagemaker), env=AWS_ENV, clock=clock, database_url=database_url)
    try:
        for name in ("done", "stopped", "broken", "carded"):
            sagemaker.add(name, status="InProgress", secondary="Training")
        reply = text_of(bot.command("subscribe ml --quiet 20:00-08:00 --quiet-tz UTC", channel="C1"))
        assert "Quiet 20:00-08:00 (UTC): failures still post" in reply
        bot.cycle()
        sagemaker.set("carded", "Stopping", "Stopping")
        bot.cycle()  # 19:00: outside the window, the alert is posted and becomes the job's card
        (card,) = slack.posts("C1")

        at(clock, NIGHT)
        sagemaker.set("done", "Completed", "Completed")
        sagemaker.set("stopped", "Stopping", "Stopping")
        sagemaker.set("carded", "Stopped", "Stopped")
        sagemaker.set("broken", "Failed", "Failed", reason="OOM")
        bot.cycle()
        sagemaker.set("stopped", "Stopped", "Stopped")  # two alerts of one job held: listed once
        bot.cycle()
        assert [p["text"] for p in slack.posts("C1")[1:]] == [slack.posts("C1")[1]["text"]]
        assert "broken" in slack.posts("C1")[1]["text"]  # a failure passes through
        held = [r for r in rows(bot) if r.state == "held"]
        assert len(held) == 4 and {r.next_attempt_at for r in held} == {datetime(2026, 12, 2, 8, 0, tzinfo=UTC)}
        assert ":crescent_moon: quiet 20:00-08:00 UTC" in text_of(bot.command("subscriptions", channel="C1"))

        bot = restart(bot, tmp_path, slack, sagemaker, clock, database_url)  # inside the window
        bot.cycle()
        assert len(slack.posts("C1")) == 2 and len([r for r in rows(bot) if r.state == "held"]) == 4

        at(clock, MORNING)
        bot = restart(bot, tmp_path, slack, sagemaker, clock, database_url)  # at its end
        bot.cycle()
        (digest,) = away(slack)
        # The thread reply follows its parent; the restarted process's pacer does not know the fake
        # Slack's per-channel budget, so a 429 may make it wait a second.
        deadline = time.monotonic() + 10
        while not [p for p in slack.posts("C1") if p.get("thread_ts") == digest["ts"]] and time.monotonic() < deadline:
            time.sleep(0.2)
            bot.runtime.worker.deliver()
        assert "While you were away: 3 jobs changed status in ml: 1 succeeded, 2 stopped" in digest["text"]
        (listing,) = [p for p in slack.posts("C1") if p.get("thread_ts") == digest["ts"]]
        assert all(name in listing["text"] for name in ("done", "stopped", "carded"))
        assert listing["text"].count("stopped in ml") == 1 and "Stopping" not in listing["text"]
        (update,) = [u for u in slack.updates if u["ts"] == card["ts"]]
        assert "now *stopped*" in text_of(update)
        assert {r.state for r in rows(bot) if r.kind == "alert" and r.job_id != ""} <= {"sent", "digested"}

        posted = len(slack.posts())
        bot = restart(bot, tmp_path, slack, sagemaker, clock, database_url)
        bot.cycle()
        bot.runtime.worker.deliver()
        assert len(slack.posts()) == posted and len(away(slack)) == 1
        assert slack.problems() == []
    finally:
        bot.close()


def test_quiet_all_holds_failures_and_removing_quiet_hours_releases_at_once(
    ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock
) -> None:
    at(clock, NIGHT)
    sagemaker.add("broken", status="InProgress", secondary="Training")
    ml.command("subscribe ml --quiet 20:00-08:00 --quiet-tz UTC --quiet-all", channel="C1")
    ml.cycle()
    sagemaker.set("broken", "Failed", "Failed", reason="OOM")
    ml.cycle()
    assert slack.posts("C1") == [] and [r.state for r in rows(ml)] == ["held"]

    ml.command("subscribe ml", channel="C1")  # quiet hours removed: what they held goes out now
    ml.runtime.worker.deliver()
    (digest,) = away(slack)
    assert "1 failed" in digest["text"]
    with ml.runtime.db.read() as session:
        (sub,) = session.exec(select(Subscription)).all()
    assert sub.quiet_start is None and not sub.quiet_all


def test_window_math_crosses_midnight_and_daylight_saving() -> None:
    utc = ZoneInfo("UTC")
    assert window_end(datetime(2026, 1, 1, 23, 0, tzinfo=UTC), "20:00", "08:00", utc) == datetime(
        2026, 1, 2, 8, 0, tzinfo=UTC
    )
    assert window_end(datetime(2026, 1, 2, 7, 59, tzinfo=UTC), "20:00", "08:00", utc) == datetime(
        2026, 1, 2, 8, 0, tzinfo=UTC
    )
    assert window_end(datetime(2026, 1, 2, 8, 0, tzinfo=UTC), "20:00", "08:00", utc) is None
    assert window_end(datetime(2026, 1, 2, 12, 0, tzinfo=UTC), "20:00", "08:00", utc) is None
    assert window_end(datetime(2026, 1, 2, 12, 0, tzinfo=UTC), "09:00", "17:00", utc) == datetime(
        2026, 1, 2, 17, 0, tzinfo=UTC
    )
    ny = ZoneInfo("America/New_York")
    # Clocks go forward on 2026-03-08 at 02:00: the night is an hour shorter, 08:00 EDT is 12:00 UTC.
    assert window_end(datetime(2026, 3, 8, 3, 0, tzinfo=UTC), "20:00", "08:00", ny) == datetime(
        2026, 3, 8, 12, 0, tzinfo=UTC
    )
    # Back on 2026-11-01: 08:00 EST is 13:00 UTC; 06:30 UTC is 01:30 EST (the repeated hour), inside.
    assert window_end(datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "20:00", "08:00", ny) == datetime(
        2026, 11, 1, 13, 0, tzinfo=UTC
    )
    # A window starting in the skipped hour (02:30) starts one hour later, at 03:30 EDT (07:30 UTC).
    assert window_end(datetime(2026, 3, 8, 7, 29, tzinfo=UTC), "02:30", "05:00", ny) is None
    assert window_end(datetime(2026, 3, 8, 7, 30, tzinfo=UTC), "02:30", "05:00", ny) == datetime(
        2026, 3, 8, 9, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("subscribe ml --quiet 8pm-8am", "quiet hours are HH:MM-HH:MM"),
        ("subscribe ml --quiet 24:00-08:00", "quiet hours are HH:MM-HH:MM"),
        ("subscribe ml --quiet 08:00-08:00", "start and end at the same time"),
        ("subscribe ml --quiet 20:00-08:00 --quiet-tz Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("subscribe ml --quiet-all", "go with --quiet"),
    ],
)
def test_bad_quiet_hours_are_refused(text: str, problem: str) -> None:
    with pytest.raises(grammar.UsageError, match=problem):
        grammar.parse(text)
    assert parse_window("20:00-08:00") == ("20:00", "08:00")


def test_queues_file_entry_with_quiet_hours(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "queues": [{"name": "ml", "provider": "sagemaker", "region": "us-east-1"}],
        "subscriptions": [{"channel": "C1", "queue": "ml", "quiet": "22:00-07:00", "quiet_all": True}],
    }
    entry = parse_config(tmp_path / "j.toml", base).subscriptions[0]
    assert entry.quiet_hours() == ("22:00", "07:00", None, True)
    base["subscriptions"][0]["quiet"] = "22-07"
    with pytest.raises(ConfigError, match=r"subscriptions\[0\].*key quiet: .*HH:MM-HH:MM"):
        parse_config(tmp_path / "j.toml", base)


def test_quiet_hours_from_the_queues_file_are_reconciled_and_exported(
    ml: Bot, sagemaker: SageMakerSim, slack: FakeSlack
) -> None:
    entry = '[[subscriptions]]\nchannel = "C1"\nqueue = "ml"\nquiet = "22:00-07:00"\nquiet_tz = "Europe/Paris"\n'
    ml.settings.jobwatch_config.write_text(queue_config(sagemaker, entry))
    done = reload_subscriptions(ml.settings, ml.runtime.db)
    assert done.added == ["C1 ml"]
    with ml.runtime.db.read() as session:
        (sub,) = session.exec(select(Subscription)).all()
    assert (sub.quiet_start, sub.quiet_end, sub.quiet_tz, sub.quiet_all) == ("22:00", "07:00", "Europe/Paris", False)
    exported = text_of(ml.command("subscriptions export", channel="C1"))
    assert 'quiet = "22:00-07:00"' in exported and 'quiet_tz = "Europe/Paris"' in exported
    ml.settings.jobwatch_config.write_text(queue_config(sagemaker, entry + "quiet_all = true\n"))
    assert reload_subscriptions(ml.settings, ml.runtime.db).changed == ["C1 ml"]
    assert reload_subscriptions(ml.settings, ml.runtime.db).nothing
