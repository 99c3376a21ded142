"""Delivery against the fake Slack under each fault docs/reliability.md §Slack errors names, and digests.

Every test runs the real bot (HTTP app, store, worker, delivery) on a simulated Modzy queue;
the clock is moved forward instead of waiting for backoffs and recovery.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.sim.modzy import ModzySim
from bot.sim.slack import FakeSlack, Fault
from bot.store.tables import OutboxItem, Subscription
from tests.conftest import TEAM
from tests.harness import Bot, MovableClock, text_of

RECOVERY = timedelta(seconds=21)  # past the deliverer's recovery_after


@pytest.fixture
def modzy() -> Iterator[ModzySim]:
    sim = ModzySim().start()
    yield sim
    sim.stop()


def make_bot(
    tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim, clock: MovableClock, bot_table: str = ""
) -> Bot:
    config = f"""
{bot_table}
[[queues]]
name = "inference"
provider = "modzy"
endpoint_url = "{modzy.url}"
"""
    bot = Bot(tmp_path, slack, config, env={"MODZY_API_KEY": modzy.api_key}, clock=clock, database_url=database_url)
    for channel in ("C1", "C2"):
        assert "Subscribed" in text_of(bot.command("subscribe inference", channel=channel))
    bot.cycle()  # baseline
    return bot


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim, clock: MovableClock) -> Iterator[Bot]:
    b = make_bot(tmp_path, database_url, slack, modzy, clock)
    yield b
    b.close()


def rows(bot: Bot, channel: str | None = None) -> list[OutboxItem]:
    with bot.runtime.db.read() as session:
        query = select(OutboxItem).order_by(col(OutboxItem.id))
        if channel:
            query = query.where(OutboxItem.channel_id == channel)
        return list(session.exec(query).all())


def post_calls(slack: FakeSlack, channel: str) -> int:
    return sum(1 for m, p in slack.calls if m == "chat.postMessage" and p.get("channel") == channel)


def test_rate_limited_post_waits_for_retry_after(
    bot: Bot, slack: FakeSlack, modzy: ModzySim, clock: MovableClock
) -> None:
    slack.script("chat.postMessage", Fault(retry_after=2, channel="C1"))
    modzy.add("ocr")
    bot.cycle()
    assert slack.posts("C1") == [] and len(slack.posts("C2")) == 1  # one channel's 429 holds no other
    (row,) = rows(bot, "C1")
    assert row.state == "pending" and row.last_error == "ratelimited" and row.attempts == 0
    assert row.next_attempt_at >= clock() + timedelta(seconds=1.5)
    bot.runtime.worker.deliver()
    assert slack.posts("C1") == []  # not before Retry-After
    clock.offset += timedelta(seconds=3)
    bot.runtime.worker.deliver()
    assert len(slack.posts("C1")) == 1 and rows(bot, "C1")[0].state == "sent"


def test_server_error_is_looked_up_before_any_repost(
    bot: Bot, slack: FakeSlack, modzy: ModzySim, clock: MovableClock
) -> None:
    slack.script("chat.postMessage", Fault(status=500, error="internal_error", channel="C1"))
    modzy.add("ocr")
    bot.cycle()
    (row,) = rows(bot, "C1")
    assert row.state == "sending" and slack.posts("C1") == []  # ambiguous: neither sent nor retried
    bot.runtime.worker.deliver()
    assert post_calls(slack, "C1") == 1
    clock.offset += RECOVERY
    bot.runtime.worker.deliver()  # history has no such alert: post it now, once
    assert any(m == "conversations.history" for m, _ in slack.calls)
    assert len(slack.posts("C1")) == 1 and rows(bot, "C1")[0].state == "sent"


def test_connection_dropped_after_slack_accepted_is_not_posted_twice(
    bot: Bot, slack: FakeSlack, modzy: ModzySim, clock: MovableClock
) -> None:
    job = modzy.add("ocr")
    bot.cycle()  # the parent message of the job's thread in C1 and C2
    slack.script("chat.postMessage", Fault(drop=True, channel="C1"))
    modzy.set(job.ident, "IN_PROGRESS", completed=0)
    bot.cycle()
    reply = rows(bot, "C1")[-1]
    assert reply.state == "sending" and reply.thread_ts  # Slack has it; we never heard back
    clock.offset += RECOVERY
    bot.runtime.worker.deliver()
    reply = rows(bot, "C1")[-1]
    assert reply.state == "sent" and reply.slack_ts == slack.posts("C1")[-1]["ts"]
    assert any(m == "conversations.replies" for m, _ in slack.calls)  # found in its thread
    assert len(slack.posts("C1")) == 2 and len(slack.alert_ids("C1")) == len(set(slack.alert_ids("C1")))


def test_channel_not_found_pauses_the_subscription_and_says_why(bot: Bot, slack: FakeSlack, modzy: ModzySim) -> None:
    slack.script("chat.postMessage", Fault(error="channel_not_found", channel="C1"))
    job = modzy.add("ocr")
    bot.cycle()
    (row,) = rows(bot, "C1")
    assert row.state == "dead" and row.last_error == "channel_not_found"
    with bot.runtime.db.read() as session:
        sub = session.exec(select(Subscription).where(Subscription.channel_id == "C1")).one()
    assert sub.paused_reason == "channel_not_found"
    assert "paused: channel_not_found" in text_of(bot.command("subscriptions", channel="C1"))
    modzy.set(job.ident, "COMPLETED")
    bot.cycle()
    assert post_calls(slack, "C1") == 1  # never retried in a loop, nothing new owed to C1
    assert len(slack.posts("C2")) == 2  # the other channel is unaffected


def test_invalid_auth_keeps_every_row_and_stops_the_workspace(
    bot: Bot, slack: FakeSlack, modzy: ModzySim, clock: MovableClock
) -> None:
    token = next(t for t, team in slack.tokens.items() if team == "T0001")
    del slack.tokens[token]  # revoked: every call answers invalid_auth
    for model in ("a", "b", "c"):
        modzy.add(model)
    bot.cycle()
    assert slack.posts() == []
    owed = rows(bot)
    assert len(owed) == 6 and {r.state for r in owed} == {"pending"} and {r.attempts for r in owed} == {0}
    tries = sum(1 for m, _ in slack.calls if m == "chat.postMessage")
    assert tries <= 2  # at most the one already in flight per channel, then the workspace stops
    bot.runtime.worker.deliver()
    assert sum(1 for m, _ in slack.calls if m == "chat.postMessage") == tries  # still paused
    slack.tokens[token] = "T0001"  # the token is fixed
    clock.offset += timedelta(minutes=6)
    bot.runtime.worker.deliver()
    assert len(slack.posts()) == 6 and {r.state for r in rows(bot)} == {"sent"}


def test_a_row_of_an_unknown_kind_is_dead_and_holds_nothing_up(
    bot: Bot, slack: FakeSlack, modzy: ModzySim, clock: MovableClock
) -> None:
    with bot.runtime.db.write() as session:  # a kind this version does not know, owed before anything else
        session.add(
            OutboxItem(
                alert_id="from-a-newer-version",
                kind="poll",
                team_id=TEAM,
                channel_id="C1",
                queue="inference",
                payload='{"text": "which one?"}',
                next_attempt_at=clock(),
                created_at=clock(),
            )
        )
    modzy.add("ocr")
    bot.cycle()
    unknown, alert = rows(bot, "C1")
    assert unknown.state == "dead" and unknown.last_error == "unknown kind: poll" and unknown.slack_ts is None
    assert alert.state == "sent" and slack.alert_ids("C1") == [alert.alert_id]  # the channel went on
    assert len(slack.posts("C2")) == 1  # and so did the round
    bot.runtime.worker.deliver()
    assert post_calls(slack, "C1") == 1 and rows(bot, "C1")[0].state == "dead"  # never tried again


def test_many_alerts_for_one_channel_become_one_digest(
    tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim, clock: MovableClock
) -> None:
    bot = make_bot(tmp_path, database_url, slack, modzy, clock, "[bot]\ndigest_threshold = 5")
    try:
        jobs = [modzy.add(f"model-{i:02d}") for i in range(45)]
        for job in jobs[:10]:
            modzy.set(job.ident, "ERROR")
        bot.cycle()
        posts = slack.posts("C1")
        parent, replies = posts[0], posts[1:]
        assert "45 jobs changed status" in text_of(parent)
        assert "35 queued" in text_of(parent) and "10 failed" in text_of(parent)
        assert len(replies) == 3 and all(r["thread_ts"] == parent["ts"] for r in replies)
        listed = "\n".join(b["text"]["text"] for r in replies for b in r["blocks"])
        for job in jobs:  # nothing hidden: every job once, with its queue and native status
            assert listed.count(job.ident) == 1
        assert listed.count("`inference` → ERROR") == 10 and listed.count("`inference` → SUBMITTED") == 35
        assert {r.state for r in rows(bot, "C1") if r.kind == "alert"} == {"digested"}
        # below the threshold, alerts go one by one again
        for job in jobs[10:13]:
            modzy.set(job.ident, "IN_PROGRESS")
        bot.cycle()
        assert len(slack.posts("C1")) == 4 + 3
    finally:
        bot.close()


def test_a_digest_whose_answer_was_lost_is_found_not_reposted(
    tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim, clock: MovableClock
) -> None:
    bot = make_bot(tmp_path, database_url, slack, modzy, clock, "[bot]\ndigest_threshold = 3")
    try:
        for i in range(8):
            modzy.add(f"m{i}")
        slack.script("chat.postMessage", Fault(drop=True, channel="C1"))
        bot.cycle()
        assert len(slack.posts("C1")) == 1  # the digest landed; its replies wait for its ts
        clock.offset += RECOVERY
        bot.runtime.worker.deliver()
        posts = slack.posts("C1")
        assert len(posts) == 2 and posts[1]["thread_ts"] == posts[0]["ts"]
        assert text_of(posts[1]).count("m") >= 8
    finally:
        bot.close()


def test_a_burst_of_one_poll_is_one_digest_decided_before_anything_is_posted(
    tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim, clock: MovableClock
) -> None:
    """300 failures seen by one poll: one digest and its thread, not a few single alerts first and a
    digest of the rest. The rows are folded in the poll's own transaction, so no delivery round can
    post one of them before the decision."""
    bot = make_bot(tmp_path, database_url, slack, modzy, clock)
    try:
        jobs = [modzy.add(f"batch-{i:03d}") for i in range(300)]
        bot.cycle()  # 300 new queued jobs: folded too (more than the default threshold of 20)
        before = len(slack.posts("C1"))
        for job in jobs:
            modzy.set(job.ident, "ERROR")
        bot.runtime.worker.poll_all()  # the poll alone: nothing delivered yet
        failed = [r for r in rows(bot, "C1") if r.kind == "alert" and r.new_status == "failed"]
        assert len(failed) == 300 and {r.state for r in failed} == {"digested"}
        assert len({r.parent_id for r in failed}) == 1
        bot.runtime.worker.deliver()
        posts = slack.posts("C1")[before:]
        parent, replies = posts[0], posts[1:]
        assert "300 jobs changed status" in text_of(parent) and "300 failed" in text_of(parent)
        assert replies and all(r.get("thread_ts") == parent["ts"] for r in replies)  # no single alert
    finally:
        bot.close()
