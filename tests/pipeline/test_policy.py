"""The noise rules, kind by kind (docs/architecture.md §Message policy): what the baseline, the
subscription filter, mutes, quiet hours, digest folding and pacing do with every kind of outbox row.

Every test runs the real bot (HTTP app, store, worker, delivery) on a simulated AWS Batch queue whose
history makes queued jobs stuck, against the fake Slack; the clock is moved instead of waited for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.core.clock import utcnow
from bot.core.outbox import DigestPayload
from bot.sim.batch import BatchSim, ServiceJob
from bot.sim.slack import FakeSlack
from bot.store.tables import OutboxItem
from tests.conftest import AWS_ENV, TEAM
from tests.harness import Bot, MovableClock, text_of

QUEUE = """
{bot}
[[queues]]
name = "gpu"
provider = "batch"
region = "us-east-1"
job_queue = "gpu-spot"
endpoint_url = "{url}"
access_key_env = "TEST_AWS_KEY"
secret_key_env = "TEST_AWS_SECRET"
{extra}
"""
HOURS_AGO = 2  # how long the stuck jobs have been queued; the history says a minute is usual


@pytest.fixture
def batch() -> Iterator[BatchSim]:
    sim = BatchSim().start()
    yield sim
    sim.stop()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


def make_bot(
    tmp_path: Path,
    database_url: str,
    slack: FakeSlack,
    batch: BatchSim,
    clock: MovableClock,
    *,
    bot: str = "",
    extra: str = "",
) -> Bot:
    config = QUEUE.format(url=batch.url, bot=bot, extra=extra)
    return Bot(tmp_path, slack, config, env=AWS_ENV, clock=clock, database_url=database_url)


@pytest.fixture
def gpu(tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock) -> Iterator[Bot]:
    bot = make_bot(tmp_path, database_url, slack, batch, clock)
    yield bot
    bot.close()


def seed_history(batch: BatchSim) -> None:
    """Six succeeded `train` jobs of a day ago, each queued a minute: the queue's usual wait."""
    day_ago = int(time.time() * 1000) - 86_400_000
    for n in range(6):
        job = batch.add(f"train-{n}", "SUCCEEDED", created_ms=day_ago)
        job.started_ms, job.stopped_ms = day_ago + 60_000, day_ago + 11 * 60_000


def stuck(batch: BatchSim, n: int, prefix: str = "eval") -> list[ServiceJob]:
    """`n` jobs queued HOURS_AGO hours ago (they are stuck at the first poll after they are seen)."""
    since = int(time.time() * 1000) - HOURS_AGO * 3_600_000
    return [batch.add(f"{prefix}-{i:02d}", "RUNNABLE", created_ms=since) for i in range(n)]


def rows(bot: Bot, channel: str | None = None) -> list[OutboxItem]:
    with bot.runtime.db.read() as session:
        query = select(OutboxItem).order_by(col(OutboxItem.id))
        if channel:
            query = query.where(OutboxItem.channel_id == channel)
        return list(session.exec(query).all())


def of_kind(bot: Bot, kind: str, channel: str | None = None) -> list[OutboxItem]:
    return [r for r in rows(bot, channel) if r.kind == kind]


def thread(slack: FakeSlack, parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in slack.posts(parent["channel"]) if p.get("thread_ts") == parent["ts"] and p is not parent]


def listing(replies: list[dict[str, Any]]) -> str:
    return "\n".join(b["text"]["text"] for r in replies for b in r["blocks"])


def window_around_now() -> str:
    """Quiet hours (UTC) from an hour ago to an hour from now."""
    now = utcnow()
    return f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"


# --- digest folding ---------------------------------------------------------------------------------


def test_a_flood_of_flags_folds_into_one_digest_that_counts_them_and_lists_every_job(
    gpu: Bot, slack: FakeSlack, batch: BatchSim
) -> None:
    seed_history(batch)
    jobs = stuck(batch, 37)
    gpu.command("subscribe gpu", channel="C1")
    gpu.cycle()  # the baseline: the jobs are known, nothing is flagged
    assert rows(gpu) == []
    gpu.cycle()
    gpu.settle()
    parent, *replies = slack.posts("C1")
    assert parent["text"] == "37 jobs stuck in gpu" and not parent.get("thread_ts")
    assert ":hourglass: 37 stuck" in text_of(parent) and "changed status" not in text_of(parent)
    assert replies == thread(slack, parent) and len(replies) == 2  # 20 jobs per reply
    listed = listing(replies)
    for job in jobs:  # nothing hidden: every job once, with what the flag says
        assert listed.count(f"*{job.name}*") == 1
    assert listed.count("` is *stuck*: queued ") == 37
    assert {r.state for r in of_kind(gpu, "flag")} == {"digested"}
    (digest,) = of_kind(gpu, "digest")
    body = DigestPayload.load(digest.payload)
    assert dict(body.counts) == {} and dict(body.flags) == {"stuck": 37}
    assert slack.rejected == 0 and slack.problems() == []


def test_flags_and_status_changes_fold_together_counted_apart(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    bot = make_bot(tmp_path, database_url, slack, batch, clock, bot="[bot]\ndigest_threshold = 10")
    try:
        seed_history(batch)
        flagged = stuck(batch, 8)
        running = [batch.add(f"etl-{i}", "RUNNING") for i in range(5)]
        bot.command("subscribe gpu", channel="C1")
        bot.cycle()  # baseline
        for job in running:
            batch.set(job.job_id, "SUCCEEDED")
        bot.cycle()  # 5 status changes and 8 flags: 13 rows, over the threshold of 10
        bot.settle()
        parent, *replies = slack.posts("C1")
        assert parent["text"] == "5 jobs changed status in gpu: 5 succeeded; 8 jobs stuck"
        assert ":white_check_mark: 5 succeeded · :hourglass: 8 stuck" in text_of(parent)
        listed = listing(replies)
        assert all(f"*{j.name}*" in listed for j in running + flagged)
        assert listed.index("etl-") < listed.index("eval-")  # status changes first, then the flags
        assert {r.state for r in rows(bot, "C1") if r.kind in ("alert", "flag")} == {"digested"}
    finally:
        bot.close()


def test_flags_are_once_per_job_and_kind_across_a_restart(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    seed_history(batch)
    stuck(batch, 25)
    bot = make_bot(tmp_path, database_url, slack, batch, clock)
    bot.command("subscribe gpu", channel="C1")
    bot.cycle()
    bot.cycle()
    bot.settle()
    posted = len(slack.posts("C1"))
    assert posted == 3 and len(of_kind(bot, "flag")) == 25  # one digest, two replies
    bot.close()
    bot = make_bot(tmp_path, database_url, slack, batch, clock)  # a new process has flagged nothing yet
    try:
        bot.cycle()
        bot.cycle()
        bot.settle()
        assert len(slack.posts("C1")) == posted and len(of_kind(bot, "flag")) == 25  # the outbox key
        assert len(of_kind(bot, "digest")) == 1
    finally:
        bot.close()


# --- quiet hours ------------------------------------------------------------------------------------


@pytest.mark.parametrize("everything", [False, True], ids=["failures-pass", "quiet-all"])
def test_flags_are_held_in_quiet_hours_and_told_in_the_away_digest(
    gpu: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock, everything: bool
) -> None:
    seed_history(batch)
    flagged = stuck(batch, 3)
    done, broken = batch.add("etl-done", "RUNNING"), batch.add("etl-broken", "RUNNING")
    quiet_all = " --quiet-all" if everything else ""
    gpu.command(f"subscribe gpu --quiet {window_around_now()} --quiet-tz UTC{quiet_all}", channel="C1")
    gpu.cycle()  # baseline
    batch.set(done.job_id, "SUCCEEDED")
    batch.set(broken.job_id, "FAILED", reason="Essential container in task exited")
    gpu.cycle()
    gpu.settle()
    held = [r for r in rows(gpu, "C1") if r.state == "held"]
    assert sorted(r.kind for r in held) == ["alert"] * (2 if everything else 1) + ["flag"] * 3
    # a flag is no failure: held whichever way the window treats failures
    assert [p["text"] for p in slack.posts("C1")] == ([] if everything else ["etl-broken in gpu: FAILED"])

    clock.offset += timedelta(hours=2)  # the window has ended
    gpu.cycle()
    gpu.settle()
    (digest,) = [p for p in slack.posts("C1") if "While you were away" in p["text"]]
    changed = (
        "2 jobs changed status in gpu: 1 succeeded, 1 failed"
        if everything
        else "1 jobs changed status in gpu: 1 succeeded"
    )
    assert digest["text"] == f"While you were away: {changed}; 3 jobs stuck"
    listed = listing(thread(slack, digest))
    assert all(f"*{j.name}*" in listed for j in flagged) and listed.count("is *stuck*") == 3
    assert {r.state for r in rows(gpu, "C1") if r.id in {h.id for h in held}} == {"digested"}


# --- stored formats ---------------------------------------------------------------------------------


def test_a_digest_stored_before_flags_were_folded_still_renders(
    gpu: Bot, slack: FakeSlack, clock: MovableClock
) -> None:
    """Rows written by the previous version: a payload without `flags`, lines of statuses only."""
    old_parent = (
        '{"counts": {"failed": 2}, "queues": ["gpu"], "causes": {"failed": {"spot_interruption": 2}}, '
        '"title": "While you were away"}'
    )
    old_part = '{"lines": [["a", "gpu", "FAILED", "failed"], ["b", "gpu", "FAILED", "failed"]], "part": 1, "parts": 1}'
    assert DigestPayload.load(old_parent).dump() == old_parent  # read and written back the same
    with gpu.runtime.db.write() as session:
        parent = OutboxItem(
            alert_id="away:0123",
            kind="digest",
            team_id=TEAM,
            channel_id="C1",
            queue="gpu",
            payload=old_parent,
            next_attempt_at=clock(),
            created_at=clock(),
        )
        session.add(parent)
        session.flush()
        session.add(
            OutboxItem(
                alert_id="away:0123:1",
                kind="digest_part",
                team_id=TEAM,
                channel_id="C1",
                queue="gpu",
                payload=old_part,
                next_attempt_at=clock(),
                created_at=clock(),
                parent_id=parent.id,
            )
        )
    gpu.cycle()
    gpu.settle()
    digest, part = slack.posts("C1")
    assert digest["text"] == "While you were away: 2 jobs changed status in gpu: 2 failed"
    assert ":x: 2 failed: 2 spot_interruption" in text_of(digest)
    assert part["thread_ts"] == digest["ts"] and part["text"] == "Jobs 1/1: a in gpu: FAILED; b in gpu: FAILED"
    assert json.loads(old_parent).keys() == {"counts", "queues", "causes", "title"}


# --- the subscription filter ------------------------------------------------------------------------


def test_the_filter_decides_flags_as_it_decides_alerts(gpu: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    seed_history(batch)
    flagged = stuck(batch, 2)
    done = batch.add("etl-done", "RUNNING")
    gpu.command("subscribe gpu failed", channel="C1")  # names a status only: no flags
    gpu.command("subscribe gpu stuck", channel="C2")  # names a flag only: no status alerts
    gpu.command("subscribe gpu", channel="C3")  # names nothing: every change and both flags
    gpu.command("subscribe gpu stuck --match nothing-*", channel="C4")  # the name filter takes flags too
    gpu.cycle()  # baseline
    batch.set(done.job_id, "SUCCEEDED")
    gpu.cycle()
    gpu.settle()
    assert rows(gpu, "C1") == [] and slack.posts("C1") == [] and rows(gpu, "C4") == []
    assert sorted(p["text"].split(" is ")[0] for p in slack.posts("C2")) == [f"{j.name} in gpu" for j in flagged]
    assert sorted(r.kind for r in rows(gpu, "C3")) == ["alert", "flag", "flag"]


def test_a_changed_filter_withdraws_the_flags_it_no_longer_wants(
    gpu: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    seed_history(batch)
    stuck(batch, 2)
    done = batch.add("etl-done", "RUNNING")
    quiet = f"--quiet {window_around_now()} --quiet-tz UTC"
    gpu.command(f"subscribe gpu {quiet}", channel="C1")
    gpu.cycle()  # baseline
    batch.set(done.job_id, "SUCCEEDED")
    gpu.cycle()
    assert sorted(r.kind for r in rows(gpu, "C1") if r.state == "held") == ["alert", "flag", "flag"]
    gpu.command(f"subscribe gpu stuck {quiet}", channel="C1")  # the same window: nothing released
    assert sorted(r.kind for r in rows(gpu, "C1")) == ["flag", "flag"]  # the status alert withdrawn
    gpu.command(f"subscribe gpu failed {quiet}", channel="C1")
    assert rows(gpu, "C1") == []  # and now the flags
    clock.offset += timedelta(hours=2)
    gpu.cycle()
    gpu.settle()
    assert slack.posts("C1") == []  # no away digest of what the channel no longer wants


# --- pacing -----------------------------------------------------------------------------------------


def test_the_operators_notices_and_the_alerts_of_one_channel_share_its_pace(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    """A notice carries `ops_team` (empty with one workspace), the channel's alerts the workspace's
    id: drained apart, they still keep one pace, the channel's."""
    bot = make_bot(tmp_path, database_url, slack, batch, clock, bot='[bot]\nops_channel = "C01"')
    worker = bot.runtime.worker
    try:
        bot.command("subscribe gpu", channel="C01")
        bot.cycle()  # baseline
        for n in range(3):
            batch.add(f"etl-{n}", "RUNNING")
        batch.faults.append("auth")
        worker.renew()
        worker.poll_all()  # the outage notice
        worker.poll_all()  # the recovery notice and three alerts: five posts owed to C01 at once
        assert sorted(r.team_id for r in rows(bot, "C01")) == ["", "", TEAM, TEAM, TEAM]
        worker.deliver()
        bot.settle()
        assert len(slack.posts("C01")) == 5 and slack.rejected == 0
    finally:
        bot.close()
