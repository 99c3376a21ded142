"""The noise rules, kind by kind (docs/architecture.md §Message policy): what the baseline, the
subscription filter, mutes, quiet hours, digest folding and pacing do with every kind of outbox row.

Every test runs the real bot (HTTP app, store, worker, delivery) on a simulated AWS Batch queue whose
history makes queued jobs stuck, against the fake Slack; the clock is moved instead of waited for.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.core import policy
from bot.core.clock import FastForward, utcnow
from bot.core.outbox import (
    ANNOUNCED,
    FILTERED,
    FOLDED,
    MUTE_HELD,
    QUIET_HELD,
    DigestPayload,
    OutboxKind,
    OutboxRow,
    OutboxState,
)
from bot.core.quiet import QuietHours
from bot.core.subscriptions import FlagKind, Subscribed, SubscriptionFilter
from bot.sim.batch import BatchSim, ServiceJob
from bot.sim.slack import FakeSlack
from bot.store.tables import OutboxItem, StepWait
from providers import Job, JobStatus
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
QUEUED_FOR = timedelta(minutes=5)  # how long the stuck jobs have waited when they are added
CROSS = timedelta(seconds=400)  # then past the stuck threshold (the 10 min floor: a minute is usual)
ALICE = "UALICE01"
OWNERS = f'owner_from = "name:^(?P<owner>[a-z]+)-"\n\n[owners]\nalice = "{ALICE}"\n'  # alice-* jobs are hers
SPOT = "Host EC2 (instance i-0abc) terminated."
ROOT = Path(__file__).resolve().parents[2]
# The rules are the same code on either store; the store queries they use run on PostgreSQL in
# tests/pipeline/test_delivery.py, test_quiet and test_mute. SQLite only keeps CI under ten minutes.
pytestmark = pytest.mark.sqlite_only


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


def stuck(batch: BatchSim, clock: MovableClock, n: int, prefix: str = "eval") -> list[ServiceJob]:
    """`n` jobs that have waited QUEUED_FOR by the bot's clock: not stuck yet. Once `cross` moves the
    clock, they pass their threshold between two polls, and the poll after that flags them (a job
    already past its threshold when a poll first sees it is not news, bot/pipeline/usual.py)."""
    since = int((clock() - QUEUED_FOR).timestamp() * 1000)
    return [batch.add(f"{prefix}-{i:02d}", "RUNNABLE", created_ms=since) for i in range(n)]


def cross(clock: MovableClock) -> None:
    """Move the bot's clock so that the jobs `stuck` made pass their threshold."""
    clock.offset += CROSS


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
    gpu: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    seed_history(batch)
    jobs = stuck(batch, clock, 37)
    gpu.command("subscribe gpu", channel="C01")
    gpu.cycle()  # the baseline: the jobs are known, nothing is flagged
    assert rows(gpu) == []
    cross(clock)
    gpu.cycle()
    gpu.settle()
    parent, *replies = slack.posts("C01")
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
        flagged = stuck(batch, clock, 8)
        running = [batch.add(f"etl-{i}", "RUNNING") for i in range(5)]
        bot.command("subscribe gpu", channel="C01")
        bot.cycle()  # baseline
        for job in running:
            batch.set(job.job_id, "SUCCEEDED")
        cross(clock)
        bot.cycle()  # 5 status changes and 8 flags: 13 rows, over the threshold of 10
        bot.settle()
        parent, *replies = slack.posts("C01")
        assert parent["text"] == "5 jobs changed status in gpu: 5 succeeded; 8 jobs stuck"
        assert ":white_check_mark: 5 succeeded · :hourglass: 8 stuck" in text_of(parent)
        listed = listing(replies)
        assert all(f"*{j.name}*" in listed for j in running + flagged)
        assert listed.index("etl-") < listed.index("eval-")  # status changes first, then the flags
        assert {r.state for r in rows(bot, "C01") if r.kind in ("alert", "flag")} == {"digested"}
    finally:
        bot.close()


def test_flags_are_once_per_job_and_kind_across_a_restart(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    seed_history(batch)
    stuck(batch, clock, 25)
    bot = make_bot(tmp_path, database_url, slack, batch, clock)
    bot.command("subscribe gpu", channel="C01")
    bot.cycle()
    cross(clock)
    bot.cycle()
    bot.settle()
    posted = len(slack.posts("C01"))
    assert posted == 3 and len(of_kind(bot, "flag")) == 25  # one digest, two replies
    bot.close()
    bot = make_bot(tmp_path, database_url, slack, batch, clock)  # a new process has flagged nothing yet
    try:
        bot.cycle()
        bot.cycle()
        bot.settle()
        assert len(slack.posts("C01")) == posted and len(of_kind(bot, "flag")) == 25  # the outbox key
        assert len(of_kind(bot, "digest")) == 1
    finally:
        bot.close()


# --- quiet hours ------------------------------------------------------------------------------------


@pytest.mark.parametrize("everything", [False, True], ids=["failures-pass", "quiet-all"])
def test_flags_are_held_in_quiet_hours_and_told_in_the_away_digest(
    gpu: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock, everything: bool
) -> None:
    seed_history(batch)
    flagged = stuck(batch, clock, 3)
    done, broken = batch.add("etl-done", "RUNNING"), batch.add("etl-broken", "RUNNING")
    quiet_all = " --quiet-all" if everything else ""
    gpu.command(f"subscribe gpu --quiet {window_around_now()} --quiet-tz UTC{quiet_all}", channel="C01")
    gpu.cycle()  # baseline
    batch.set(done.job_id, "SUCCEEDED")
    batch.set(broken.job_id, "FAILED", reason="Essential container in task exited")
    cross(clock)
    gpu.cycle()
    gpu.settle()
    held = [r for r in rows(gpu, "C01") if r.state == "held"]
    assert sorted(r.kind for r in held) == ["alert"] * (2 if everything else 1) + ["flag"] * 3
    # a flag is no failure: held whichever way the window treats failures
    assert [p["text"] for p in slack.posts("C01")] == ([] if everything else ["etl-broken in gpu: FAILED"])

    clock.offset += timedelta(hours=2)  # the window has ended
    gpu.cycle()
    gpu.settle()
    (digest,) = [p for p in slack.posts("C01") if "While you were away" in p["text"]]
    changed = (
        "2 jobs changed status in gpu: 1 succeeded, 1 failed"
        if everything
        else "1 jobs changed status in gpu: 1 succeeded"
    )
    assert digest["text"] == f"While you were away: {changed}; 3 jobs stuck"
    listed = listing(thread(slack, digest))
    assert all(f"*{j.name}*" in listed for j in flagged) and listed.count("is *stuck*") == 3
    assert {r.state for r in rows(gpu, "C01") if r.id in {h.id for h in held}} == {"digested"}


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
            channel_id="C01",
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
                channel_id="C01",
                queue="gpu",
                payload=old_part,
                next_attempt_at=clock(),
                created_at=clock(),
                parent_id=parent.id,
            )
        )
    gpu.cycle()
    gpu.settle()
    digest, part = slack.posts("C01")
    assert digest["text"] == "While you were away: 2 jobs changed status in gpu: 2 failed"
    assert ":x: 2 failed: 2 spot_interruption" in text_of(digest)
    assert part["thread_ts"] == digest["ts"] and part["text"] == "Jobs 1/1: a in gpu: FAILED; b in gpu: FAILED"
    assert json.loads(old_parent).keys() == {"counts", "queues", "causes", "title"}


# --- the subscription filter ------------------------------------------------------------------------


def test_the_filter_decides_flags_as_it_decides_alerts(
    gpu: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    seed_history(batch)
    flagged = stuck(batch, clock, 2)
    done = batch.add("etl-done", "RUNNING")
    gpu.command("subscribe gpu failed", channel="C01")  # names a status only: no flags
    gpu.command("subscribe gpu stuck", channel="C02")  # names a flag only: no status alerts
    gpu.command("subscribe gpu", channel="C03")  # names nothing: every change and both flags
    gpu.command("subscribe gpu stuck --match nothing-*", channel="C04")  # the name filter takes flags too
    gpu.cycle()  # baseline
    batch.set(done.job_id, "SUCCEEDED")
    cross(clock)
    gpu.cycle()
    gpu.settle()
    assert rows(gpu, "C01") == [] and slack.posts("C01") == [] and rows(gpu, "C04") == []
    assert sorted(p["text"].split(" is ")[0] for p in slack.posts("C02")) == [f"{j.name} in gpu" for j in flagged]
    assert sorted(r.kind for r in rows(gpu, "C03")) == ["alert", "flag", "flag"]


def test_a_changed_filter_withdraws_the_flags_it_no_longer_wants(
    gpu: Bot, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    seed_history(batch)
    stuck(batch, clock, 2)
    done = batch.add("etl-done", "RUNNING")
    quiet = f"--quiet {window_around_now()} --quiet-tz UTC"
    gpu.command(f"subscribe gpu {quiet}", channel="C01")
    gpu.cycle()  # baseline
    batch.set(done.job_id, "SUCCEEDED")
    cross(clock)
    gpu.cycle()
    assert sorted(r.kind for r in rows(gpu, "C01") if r.state == "held") == ["alert", "flag", "flag"]
    gpu.command(f"subscribe gpu stuck {quiet}", channel="C01")  # the same window: nothing released
    assert sorted(r.kind for r in rows(gpu, "C01")) == ["flag", "flag"]  # the status alert withdrawn
    gpu.command(f"subscribe gpu failed {quiet}", channel="C01")
    assert rows(gpu, "C01") == []  # and now the flags
    clock.offset += timedelta(hours=2)
    gpu.cycle()
    gpu.settle()
    assert slack.posts("C01") == []  # no away digest of what the channel no longer wants


# --- the table: docs/architecture.md §Message policy is what the code does --------------------------

RULES = {  # column of the table -> the kinds the rule acts on, as the code names them
    "baseline": ANNOUNCED,
    "subscription filter": FILTERED,
    "mute": MUTE_HELD,
    "quiet hours": QUIET_HELD,
    "digest folding": FOLDED,
    "pacing": frozenset(OutboxKind),
}
ACTS = {"none", "filtered", "muted", "not written", "held", "folded", "paced"}  # verdicts of a rule that acts
PASSES = {"owed", "n/a", "not filtered", "never muted", "not held", "never held", "never folded"}


def policy_table() -> dict[OutboxKind, dict[str, str]]:
    """kind -> rule -> the verdict (the bold first words of its cell) in the table of the docs."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("\n## Message policy\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    header = next(i for i, line in enumerate(lines) if line.startswith("| kind |"))
    rules = [c.strip() for c in lines[header].strip("|").split("|")][1:]
    table: dict[OutboxKind, dict[str, str]] = {}
    for line in lines[header + 1 :]:  # (the separator row is no "| " line)
        kind, *cells = [c.strip() for c in line.strip("|").split("|")]
        verdicts = [re.match(r"\*\*([^*]+)\*\*", cell) for cell in cells]
        assert all(verdicts), line
        table[OutboxKind(kind.strip("`"))] = {r: v.group(1) for r, v in zip(rules, verdicts, strict=True) if v}
    return table


def test_the_table_in_the_docs_says_what_the_named_sets_say() -> None:
    table = policy_table()
    assert set(table) == set(OutboxKind)  # a row for every kind: no kind the rules forget
    for kind, row in table.items():
        assert set(row) == set(RULES), kind  # a cell for every rule
        for rule, verdict in row.items():
            assert verdict in ACTS | PASSES, (kind, rule, verdict)
            assert (verdict in ACTS) == (kind in RULES[rule]), (kind, rule, verdict)


def a_row(kind: OutboxKind, *, status: str = "succeeded") -> OutboxRow:
    return OutboxRow(f"{kind}-1", kind, TEAM, "C01", "gpu", "{}", utcnow(), job_id="j1", new_status=status)


def test_each_rule_acts_on_the_kinds_of_its_set_and_lets_the_others_through() -> None:
    """The rule functions themselves, kind by kind (the pipeline tests below show them at work)."""
    every = [a_row(kind, status="stuck" if kind is OutboxKind.FLAG else "succeeded") for kind in OutboxKind]
    assert {r.kind for r in every} - {r.kind for r in policy.baseline_owes(every, baseline=True)} == ANNOUNCED
    assert policy.baseline_owes(every, baseline=False) == every

    muted = policy.hold_muted(every, frozenset({(TEAM, "C01", "")}))
    assert {r.kind for r in muted if r.state is OutboxState.MUTED} == MUTE_HELD

    now = utcnow()
    window = QuietHours(f"{now - timedelta(hours=1):%H:%M}", f"{now + timedelta(hours=1):%H:%M}", "UTC")
    sub = Subscribed(1, TEAM, "C01", "gpu", SubscriptionFilter(), quiet=window)
    held = policy.hold_quiet(every, [sub], now=now, default_tz="UTC")
    assert {r.kind for r in held if r.state is OutboxState.HELD} == QUIET_HELD
    failures = [a_row(kind, status="failed") for kind in QUIET_HELD]  # only an alert's failure passes
    assert [r.state for r in policy.hold_quiet(failures, [sub], now=now, default_tz="UTC")] == [
        OutboxState.HELD if r.kind is OutboxKind.FLAG else OutboxState.PENDING for r in failures
    ]

    nothing = SubscriptionFilter.from_words(["nothing"], match="nobody-*")  # wants no job of any kind
    job = Job(queue="gpu", id="j1", name="eval-1", status=JobStatus.QUEUED, native_status="RUNNABLE")
    taken = {k for k in OutboxKind if policy.wanted(nothing, k, job, flag=FlagKind.STUCK)}
    assert set(OutboxKind) - taken == FILTERED

    # a family's recovery (bot/core/history.py) is an alert a failures-only filter takes, unless opted out
    ok = job.model_copy(update={"status": JobStatus.SUCCEEDED, "extra": {"recovered_after": 3}})
    failures_only = SubscriptionFilter.from_words(["failed"])
    assert policy.wanted(failures_only, OutboxKind.ALERT, ok)
    assert not policy.wanted(SubscriptionFilter.from_words(["failed"], recovery=False), OutboxKind.ALERT, ok)
    assert not policy.wanted(failures_only, OutboxKind.ALERT, ok.model_copy(update={"extra": {}}))
    assert not policy.wanted(SubscriptionFilter.from_words(["failed"], match="x-*"), OutboxKind.ALERT, ok)


# --- each column of the table, through the pipeline -------------------------------------------------


def hh_mm_in(minutes: int) -> str:
    return f"{utcnow() + timedelta(minutes=minutes):%H:%M}"


def test_baseline_each_kind(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    """alert, flag, note, dm: none at a queue's first poll; notice: owed; digests: written by no poll."""
    bot = make_bot(tmp_path, database_url, slack, batch, clock, bot='[bot]\nops_channel = "COPS"', extra=OWNERS)
    try:
        seed_history(batch)
        stuck(batch, clock, 3)  # flags
        batch.add("alice-broken", "FAILED")  # after a baseline: an alert, the owner's mention and DM
        retried = batch.add("bob-retry", "RUNNABLE", attempts=3)
        batch.set(retried.job_id, "RUNNING")
        assert batch.fail_attempt(retried.job_id, SPOT)  # on its second attempt: a retry note
        bot.command("subscribe gpu", channel="C01")
        batch.faults.append("auth")  # the queue's first poll fails: the operators hear of it at once
        bot.cycle()
        bot.cycle()  # the baseline
        bot.settle()
        assert [r.kind for r in rows(bot)] == ["notice", "notice"]
        outage, again = slack.posts("COPS")
        assert "cannot poll" in outage["text"] and again["text"] == "Queue gpu is polling again after 1 failed polls."
        assert slack.posts("C01") == [] and slack.dms(ALICE) == []
        cross(clock)
        bot.cycle()  # the first poll after it: the stuck jobs are news now
        assert len(of_kind(bot, "flag", "C01")) == 3
    finally:
        bot.close()


def test_subscription_filter_each_kind(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    """alert, flag, note: as the channel's filter says; notice, dm: not filtered; a digest folds only
    what the filter took."""
    config = '[bot]\nops_channel = "C01"\ndigest_threshold = 3'
    bot = make_bot(tmp_path, database_url, slack, batch, clock, bot=config, extra=OWNERS)
    try:
        seed_history(batch)
        flagged = stuck(batch, clock, 4)
        done = batch.add("alice-done", "RUNNING")
        retried = batch.add("bob-retry", "RUNNABLE", attempts=3)
        bot.command("subscribe gpu failed", channel="C01")  # a status only: no flag; the operators' channel
        bot.command("subscribe gpu stuck", channel="C02")  # a flag only
        for channel in ("C03", "C04"):
            bot.command("subscribe gpu --match bob-*", channel=channel)
        bot.cycle()  # baseline
        batch.set(retried.job_id, "RUNNING")
        cross(clock)
        bot.cycle()  # bob's job runs: its thread in C03 and C04; four stuck jobs: C02's burst
        bot.settle()
        bot.command("subscribe gpu --match etl-*", channel="C04")  # C04 takes bob's jobs no more
        assert batch.fail_attempt(retried.job_id, SPOT)
        batch.set(done.job_id, "SUCCEEDED")
        batch.faults.append("auth")
        bot.cycle()  # the outage: a notice to C01, whose filter names only `failed`
        bot.cycle()  # the retry, alice's success and the recovery
        bot.settle()

        assert [r.kind for r in rows(bot, "C01")] == ["notice", "notice"]  # no flag, no success
        assert [p["text"].split(":")[0] for p in slack.posts("C01")] == [
            "Queue gpu cannot poll",
            "Queue gpu is polling again after 1 failed polls.",
        ]
        (dm,) = slack.dms(ALICE)  # no channel wanted alice's success; her DM is not a channel's to filter
        assert "alice-done" in text_of(dm) and "succeeded" in text_of(dm)

        (digest, *parts) = slack.posts("C02")
        assert digest["text"] == "4 jobs stuck in gpu"  # only what C02's filter took: no status change
        assert all(f"*{j.name}*" in listing(parts) for j in flagged)
        assert not any(r.kind == "alert" for r in rows(bot, "C02"))

        alert, note = slack.posts("C03")
        assert note["thread_ts"] == alert["ts"] and "attempt 1 of 3 failed" in note["text"]
        assert [r.kind for r in rows(bot, "C04")] == ["alert"]  # its filter no longer takes bob-retry
        assert slack.rejected == 0
    finally:
        bot.close()


def test_mute_each_kind(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    """alert, flag: muted and counted; note: not written; notice, dm, digest: never muted."""
    bot = make_bot(tmp_path, database_url, slack, batch, clock, bot='[bot]\nops_channel = "C01"', extra=OWNERS)
    try:
        seed_history(batch)
        retried = batch.add("bob-retry", "RUNNABLE", attempts=3)
        broken = batch.add("alice-broken", "RUNNING")
        bot.command("subscribe gpu", channel="C01")
        bot.cycle()  # baseline
        batch.set(retried.job_id, "RUNNING")
        bot.cycle()  # bob's job runs: its thread
        bot.settle()
        assert "Muted gpu in this channel until" in text_of(bot.command("mute gpu 2h", channel="C01"))
        bot.command(f"digest gpu daily {hh_mm_in(30)} --tz UTC", channel="C01")
        stuck(batch, clock, 2)  # two jobs first seen now: an alert and a flag each
        assert batch.fail_attempt(retried.job_id, SPOT)  # a retry note
        batch.set(broken.job_id, "FAILED", reason="Essential container in task exited")  # owner's mention and DM
        cross(clock)
        bot.cycle()
        batch.faults.append("auth")
        bot.cycle()  # an outage notice
        bot.cycle()  # and its recovery
        bot.settle()

        assert (
            sorted((r.kind, r.state) for r in rows(bot, "C01") if r.state == "muted")
            == [("alert", "muted")] * 3 + [("flag", "muted")] * 2
        )
        assert not [r for r in of_kind(bot, "note", "C01")]  # neither the retry nor the owner's mention
        first, outage, again = slack.posts("C01")
        assert "bob-retry" in first["text"] and "cannot poll" in outage["text"] and "polling again" in again["text"]
        (dm,) = slack.dms(ALICE)
        assert "alice-broken" in text_of(dm) and "failed" in text_of(dm)

        clock.offset += timedelta(minutes=40)  # the scheduled digest is due; the mute runs an hour more
        bot.runtime.worker.renew()
        bot.runtime.worker.digests()
        bot.settle()
        (scheduled,) = [p for p in slack.posts("C01") if "Daily digest of gpu" in p["text"]]
        assert not scheduled.get("thread_ts")

        assert "5 alert(s) were held back" in text_of(bot.command("unmute gpu", channel="C01"))
        bot.settle()
        assert "5 alerts were muted meanwhile" in slack.posts("C01")[-1]["text"]  # the alerts and the flags
        assert slack.rejected == 0
    finally:
        bot.close()


def waits_for_its_alert(row: OutboxItem) -> bool:
    """The owner's mention: a thread-only note that stays pending while quiet hours hold its alert."""
    return row.kind == "note" and row.alert_id.startswith("owner:")


def test_quiet_hours_each_kind(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    """alert, flag: held, then in the away digest; note: not held, but a thread-only one follows its
    alert; notice, dm, digest: never held."""
    bot = make_bot(tmp_path, database_url, slack, batch, clock, bot='[bot]\nops_channel = "C01"', extra=OWNERS)
    try:
        seed_history(batch)
        retried = batch.add("bob-retry", "RUNNABLE", attempts=3)
        broken, done = batch.add("alice-broken", "RUNNING"), batch.add("etl-done", "RUNNING")
        bot.command("subscribe gpu", channel="C01")
        bot.cycle()  # baseline
        batch.set(retried.job_id, "RUNNING")
        bot.cycle()  # bob's job runs: its thread
        bot.settle()
        (card,) = slack.posts("C01")
        bot.command(f"subscribe gpu --quiet {window_around_now()} --quiet-tz UTC --quiet-all", channel="C01")
        bot.command(f"digest gpu daily {hh_mm_in(30)} --tz UTC", channel="C01")
        flagged = stuck(batch, clock, 2)  # two jobs first seen now: an alert and a flag each
        assert batch.fail_attempt(retried.job_id, SPOT)  # a retry note in bob's thread
        batch.set(broken.job_id, "FAILED", reason="Essential container in task exited")  # mention and DM
        batch.set(done.job_id, "SUCCEEDED")
        cross(clock)
        bot.cycle()
        batch.faults.append("auth")
        bot.cycle()
        bot.cycle()
        bot.settle(waiting=waits_for_its_alert)

        assert sorted(r.kind for r in rows(bot, "C01") if r.state == "held") == ["alert"] * 4 + ["flag"] * 2
        retry, outage, again = slack.posts("C01")[1:]
        assert retry["thread_ts"] == card["ts"] and "attempt 1 of 3 failed" in retry["text"]  # a reply: not held
        assert "cannot poll" in outage["text"] and "polling again" in again["text"]
        (dm,) = slack.dms(ALICE)
        assert "alice-broken" in text_of(dm)
        (mention,) = [r for r in of_kind(bot, "note", "C01") if r.alert_id.startswith("owner:")]
        assert mention.state == "pending"  # waits for its alert, held until the window ends

        clock.offset += timedelta(minutes=40)  # still quiet; the scheduled digest is due
        bot.runtime.worker.renew()
        bot.runtime.worker.digests()
        bot.settle(waiting=waits_for_its_alert)
        assert [p for p in slack.posts("C01") if "Daily digest of gpu" in p["text"]]

        clock.offset += timedelta(hours=2)  # the window has ended
        bot.cycle()
        bot.settle()
        (away,) = [p for p in slack.posts("C01") if "While you were away" in p["text"]]
        assert away["text"] == (
            "While you were away: 4 jobs changed status in gpu: 2 queued, 1 succeeded, 1 failed; 2 jobs stuck"
        )
        assert all(f"*{j.name}*" in listing(thread(slack, away)) for j in flagged)
        mention = next(r for r in rows(bot, "C01") if r.id == mention.id)
        assert (mention.state, mention.last_error) == ("dead", "no_thread")  # its alert went into the digest
        assert not [p for p in slack.posts("C01") if ALICE in p["text"]]  # never at the channel's top level
        assert slack.rejected == 0
    finally:
        bot.close()


def test_digest_folding_each_kind(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    """alert, flag: folded; note: never folded, a thread-only one of a folded alert goes to the job's
    thread or nowhere; notice, dm, digest, digest_part: never folded."""
    config = '[bot]\nops_channel = "C01"\ndigest_threshold = 3'
    bot = make_bot(tmp_path, database_url, slack, batch, clock, bot=config, extra=OWNERS)
    try:
        seed_history(batch)
        others = [batch.add(f"alice-{i}", "RUNNING") for i in range(3)]
        bot.command("subscribe gpu", channel="C01")
        bot.cycle()  # baseline
        carded = batch.add("alice-carded", "RUNNING")
        bot.cycle()  # one alert: alice-carded has a thread
        bot.settle()
        (card,) = slack.posts("C01")
        batch.faults.append("auth")
        bot.cycle()  # an outage notice
        for job in [carded, *others]:
            batch.set(job.job_id, "FAILED", reason="Essential container in task exited")
        flagged = stuck(batch, clock, 2)
        cross(clock)
        bot.cycle()  # 4 failures, 2 jobs first seen (and stuck): 6 alerts and 2 flags; 4 mentions, 4 DMs; recovery
        bot.settle()

        (digest,) = [p for p in slack.posts("C01") if "jobs changed status" in p["text"]]
        assert digest["text"] == "6 jobs changed status in gpu: 2 queued, 4 failed; 2 jobs stuck"
        listed = listing(thread(slack, digest))
        assert all(f"*{j.name}*" in listed for j in [carded, *others, *flagged])
        first, *burst = [r for r in rows(bot, "C01") if r.kind in ("alert", "flag")]
        assert first.state == "sent" and len(burst) == 8 and {r.state for r in burst} == {"digested"}
        assert {r.state for r in rows(bot, "C01") if r.kind in ("digest", "digest_part")} == {"sent"}

        top = [p["text"].split(":")[0].split(" after")[0] for p in slack.posts("C01") if not p.get("thread_ts")]
        assert sorted(top) == [  # the notices stand apart from the digest
            "6 jobs changed status in gpu",
            "Queue gpu cannot poll",
            "Queue gpu is polling again",
            "alice-carded in gpu",
        ]
        (mention,) = [p for p in slack.posts("C01") if ALICE in p["text"]]
        assert mention["thread_ts"] == card["ts"] and not mention["reply_broadcast"]  # in the job's thread
        notes = [r for r in of_kind(bot, "note", "C01") if r.alert_id.startswith("owner:")]
        assert sorted((r.state, r.last_error) for r in notes) == [("dead", "no_thread")] * 3 + [("sent", None)]
        assert len(slack.dms(ALICE)) == 4  # each her own: never folded
        assert slack.rejected == 0
    finally:
        bot.close()


def test_pacing_each_kind(
    tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim, clock: MovableClock
) -> None:
    """Every kind keeps the pace of its channel (a DM, of its person's IM): posts of every kind owed
    to one channel at once, in one round, and none refused by the fake Slack, whose clock the bot's
    pace shares (so a kind that skipped the pace would outrun its 1 post/s)."""
    config = '[bot]\nops_channel = "C01"\ndigest_threshold = 50'
    bot = make_bot(tmp_path, database_url, slack, batch, clock, bot=config, extra=OWNERS)
    worker = bot.runtime.worker
    try:
        seed_history(batch)
        owned = [batch.add(f"alice-{i}", "RUNNING") for i in range(4)]
        bot.command("subscribe gpu", channel="C01")
        bot.command(f"digest gpu daily {hh_mm_in(30)} --tz UTC", channel="C01")
        bot.cycle()  # baseline
        run = slack.function_executed("wait_for_job", {"queue": "gpu", "job": owned[0].job_id})
        bot.event(run)  # a workflow waits for the first of them: its completion is owed with the alerts
        deadline = time.monotonic() + 10
        while True:
            with bot.runtime.db.read() as session:
                if session.exec(select(StepWait)).first() is not None:
                    break
            assert time.monotonic() < deadline, "the wait was never recorded"
            time.sleep(0.02)
        batch.faults.append("auth")
        bot.cycle()  # the outage
        for job in owned:
            batch.set(job.job_id, "FAILED", reason="Essential container in task exited")
        stuck(batch, clock, 4)
        cross(clock)
        worker.renew()
        worker.poll_all()  # 8 alerts, 4 flags, 4 mentions, 4 DMs and the recovery notice, owed at once
        clock.offset += timedelta(minutes=40)
        worker.digests()  # and the scheduled digest of the period, its failures in its thread
        assert isinstance(slack.monotonic, FastForward)
        before, posted = slack.monotonic(), len(slack.posts("C01"))
        worker.deliver()  # one round
        bot.settle()
        assert {OutboxKind(r.kind) for r in rows(bot) if r.state == "sent"} == set(OutboxKind)
        assert len(slack.posts("C01")) - posted == 8 + 4 + 4 + 1 + 2 and len(slack.dms(ALICE)) == 4
        (done,) = slack.completed(run["function_execution_id"])  # a step keeps its own pace: one run, one call
        assert done["ok"] and done["outputs"]["status"] == "failed"
        assert slack.rejected == 0  # nothing outran the channel's 1 post/s
        assert slack.monotonic() - before >= 16  # the bot waited (skipped ahead) for its turns
    finally:
        bot.close()


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
