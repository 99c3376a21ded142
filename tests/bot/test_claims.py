"""Claiming a failure: the Claim button, a take-over, presses at once, `/jobs open`, end to end through
the Batch simulator, the signed HTTP app and the fake Slack (cards are edited by delivery)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.blocks import render
from bot.sim.batch import BatchSim
from bot.sim.slack import FakeSlack, Fault
from bot.store.tables import AuditEntry, JobClaim
from tests.conftest import AWS_ENV
from tests.harness import Bot, text_of

ALICE, BOB = "UALICE001", "UBOB00001"
CONFIG = """
[[queues]]
name = "gpu"
provider = "batch"
region = "us-east-1"
job_queue = "gpu-spot"
endpoint_url = "{url}"
access_key_env = "TEST_AWS_KEY"
secret_key_env = "TEST_AWS_SECRET"
"""


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, batch: BatchSim) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, CONFIG.format(url=batch.url), env=AWS_ENV, database_url=database_url)
    b.command("subscribe gpu", channel="C1")
    b.command("subscribe gpu failed", channel="C2")
    b.cycle()  # baseline
    yield b
    b.close()


def failed(bot: Bot, batch: BatchSim, name: str) -> str:
    job = batch.add(name, "RUNNING")
    bot.cycle()
    batch.set(job.job_id, "FAILED", reason="Essential container in task exited")
    bot.cycle()
    bot.settle()
    return job.job_id


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no {action_id} button in {text_of(message)}")


def card(slack: FakeSlack, channel: str, name: str) -> dict[str, Any]:
    """The job's card (its thread parent) as it looks now: the last edit of it, else as posted."""
    (parent,) = [p for p in slack.posts(channel) if not p.get("thread_ts") and name in text_of(p)]
    edits = [u for u in slack.updates if u["ts"] == parent["ts"]]
    return edits[-1] if edits else parent


def claims(bot: Bot) -> list[JobClaim]:
    with bot.runtime.db.read() as session:
        return list(session.exec(select(JobClaim)).all())


def test_claim_then_take_over_edits_every_card_and_records_both(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    failed(bot, batch, "nightly-eval-1")
    claim = button(card(slack, "C1", "nightly-eval-1"), render.CLAIM_ACTION)
    assert button(card(slack, "C2", "nightly-eval-1"), render.CLAIM_ACTION)["value"] == claim["value"]
    assert "nightly-eval-1" in text_of(bot.command("open", channel="C1"))

    assert "You are on *nightly-eval-1*" in text_of(
        bot.press(render.CLAIM_ACTION, claim["value"], channel="C1", user=ALICE)
    )
    bot.settle()
    for channel in ("C1", "C2"):  # the card shows it in place, in every channel that has it
        assert f"claimed by <@{ALICE}>" in text_of(card(slack, channel, "nightly-eval-1")), channel
        notes = [p for p in slack.posts(channel) if p.get("thread_ts") and "is on it" in text_of(p)]
        assert len(notes) == 1 and not notes[0].get("reply_broadcast"), channel
    assert "already yours" in text_of(bot.press(render.CLAIM_ACTION, claim["value"], channel="C1", user=ALICE))
    assert "No unclaimed failure" in text_of(bot.command("open", channel="C1"))

    second = bot.press(render.CLAIM_ACTION, claim["value"], channel="C2", user=BOB)
    assert f"claimed by <@{ALICE}>" in text_of(second)
    take = button(second, render.TAKE_OVER_ACTION)
    assert "You are on *nightly-eval-1*, taken over from" in text_of(
        bot.press(render.TAKE_OVER_ACTION, take["value"], channel="C2", user=BOB)
    )
    # Alice's offer to take over is stale now: refused, not applied blindly.
    stale = bot.press(render.TAKE_OVER_ACTION, take["value"].replace(ALICE, BOB), channel="C1", user=ALICE)
    assert "You are on" in text_of(stale)  # a take-over offered against Bob's claim is Alice taking it back
    bot.settle()
    (row,) = claims(bot)
    assert (row.user_id, row.previous_user_id) == (ALICE, BOB)
    assert f"claimed by <@{ALICE}>, taken over from <@{BOB}>" in text_of(card(slack, "C1", "nightly-eval-1"))
    with bot.runtime.db.read() as session:
        actions = [
            (a.action, a.user_id)
            for a in session.exec(select(AuditEntry).where(col(AuditEntry.queue) == "gpu").order_by(col(AuditEntry.id)))
            if a.action.split(" ")[0] in ("claim", "take")
        ]
    assert [a for a, _ in actions] == ["claim (button)", "take over (button)", "take over (button)"], actions


def test_a_stale_take_over_is_refused(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    failed(bot, batch, "etl-1")
    value = button(card(slack, "C1", "etl-1"), render.CLAIM_ACTION)["value"]
    bot.press(render.CLAIM_ACTION, value, channel="C1", user=ALICE)
    offered = button(bot.press(render.CLAIM_ACTION, value, channel="C1", user=BOB), render.TAKE_OVER_ACTION)
    carol = "UCAROL001"
    bot.press(render.TAKE_OVER_ACTION, offered["value"], channel="C1", user=carol)  # Carol takes it first
    late = text_of(bot.press(render.TAKE_OVER_ACTION, offered["value"], channel="C1", user=BOB))
    assert f"claimed by <@{carol}>" in late and "changed since" in late
    (row,) = claims(bot)
    assert row.user_id == carol


def test_presses_at_once_make_one_claim(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    failed(bot, batch, "train-7")
    value = button(card(slack, "C1", "train-7"), render.CLAIM_ACTION)["value"]
    answers: list[str] = []

    def press(user: str) -> None:
        answers.append(text_of(bot.press(render.CLAIM_ACTION, value, channel="C1", user=user)))

    pressing = [threading.Thread(target=press, args=(u,)) for u in (ALICE, BOB, ALICE, BOB)]
    for t in pressing:
        t.start()
    for t in pressing:
        t.join()
    (row,) = claims(bot)
    assert sum("You are on" in a for a in answers) == 1, answers
    assert all("You are on" in a or "already yours" in a or "claimed by" in a for a in answers), answers
    bot.settle()
    assert len([p for p in slack.posts("C1") if "is on it" in text_of(p)]) == 1
    assert f"claimed by <@{row.user_id}>" in text_of(card(slack, "C1", "train-7"))


def test_open_lists_unclaimed_failures_with_their_age_and_not_those_a_later_run_fixed(
    bot: Bot, slack: FakeSlack, batch: BatchSim
) -> None:
    failed(bot, batch, "nightly-eval-1")
    failed(bot, batch, "report-9")
    listed = text_of(bot.command("open", channel="C1"))
    assert "2 unclaimed failure(s)" in listed and "nightly-eval-1" in listed and "report-9" in listed
    assert "s ago" in listed  # the age
    value = button(card(slack, "C1", "nightly-eval-1"), render.CLAIM_ACTION)["value"]
    bot.press(render.CLAIM_ACTION, value, channel="C1", user=ALICE)
    # a later run of the claimed job's family succeeds: the claim stays, nothing breaks
    job = batch.add("nightly-eval-2", "RUNNING")
    bot.cycle()
    batch.set(job.job_id, "SUCCEEDED")
    bot.cycle()
    bot.settle()
    (row,) = claims(bot)
    assert row.user_id == ALICE
    assert f"claimed by <@{ALICE}>" in text_of(card(slack, "C1", "nightly-eval-1"))
    failed(bot, batch, "report-10")
    job = batch.add("report-11", "RUNNING")  # report-10's family succeeds afterwards: fixed, not open
    bot.cycle()
    batch.set(job.job_id, "SUCCEEDED")
    bot.cycle()
    listed = text_of(bot.command("open gpu", channel="C1"))
    assert "nightly-eval-1" not in listed and "report-9" not in listed and "report-10" not in listed, listed
    assert "No unclaimed failure" in listed
    assert "Usage: /jobs open [queue]" in text_of(bot.command("open gpu extra", channel="C1"))


def test_a_later_status_change_keeps_the_claim_on_the_card(bot: Bot, slack: FakeSlack, batch: BatchSim) -> None:
    job_id = failed(bot, batch, "bert-ft-1")
    claim = button(card(slack, "C1", "bert-ft-1"), render.CLAIM_ACTION)
    bot.press(render.CLAIM_ACTION, claim["value"], channel="C1", user=ALICE)
    bot.settle()
    edits = len(slack.updates)
    # the provider says what stopped it: the failure was its runtime limit (failed -> timed_out)
    batch.set(job_id, "FAILED", reason="Job attempt duration exceeded timeout")
    bot.cycle()
    bot.settle()
    assert len(slack.updates) > edits  # the card was redrawn for the new status
    now = text_of(card(slack, "C1", "bert-ft-1"))  # C2 hears only `failed`: its card stays as it was
    assert "now *timed_out*" in now and f"claimed by <@{ALICE}>" in now, now
    (reply,) = [p for p in slack.posts("C1") if p.get("thread_ts") and "timed_out" in text_of(p)]
    assert f"claimed by <@{ALICE}>" in text_of(reply)  # the status change's reply says it too
    assert f"claimed by <@{ALICE}>" in text_of(card(slack, "C2", "bert-ft-1"))
    (row,) = claims(bot)
    assert row.user_id == ALICE


def test_a_status_change_owed_before_the_claim_and_posted_after_it_keeps_the_claim(
    bot: Bot, slack: FakeSlack, batch: BatchSim
) -> None:
    job_id = failed(bot, batch, "bert-ft-2")
    claim = button(card(slack, "C1", "bert-ft-2"), render.CLAIM_ACTION)
    batch.set(job_id, "FAILED", reason="Job attempt duration exceeded timeout")
    bot.runtime.worker.renew()
    bot.runtime.worker.poll_all()  # the time-out is written, not posted yet
    bot.press(render.CLAIM_ACTION, claim["value"], channel="C1", user=ALICE)
    slack.script("chat.postMessage", Fault(error="try_again_soon", channel="C1"))  # the time-out waits its backoff
    bot.settle()
    (note,) = [p for p in slack.posts("C1") if p.get("thread_ts") and "is on it" in text_of(p)]
    (change,) = [p for p in slack.posts("C1") if p.get("thread_ts") and "timed_out" in text_of(p)]
    assert float(change["ts"]) > float(note["ts"])  # the claim's note went first
    now = text_of(card(slack, "C1", "bert-ft-2"))  # redrawn last by the time-out
    assert "now *timed_out*" in now and f"claimed by <@{ALICE}>" in now, now
