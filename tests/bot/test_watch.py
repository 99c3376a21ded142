"""Watching a job: through the real HTTP app, against each provider's simulator and the fake Slack.

A person watches a job (command or button) and gets direct messages in the bot's IM with them
(opened with conversations.open): once when a queued job starts running, once when it ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.blocks import render
from bot.sim.slack import FakeSlack, Fault
from bot.store.tables import OutboxItem, Watch
from tests.harness import Bot, MovableClock, SimQueue, sim_queue, text_of

ALICE = "UALICE01"
BOB = "UBOB0001"


@dataclass
class Kit(SimQueue):
    """One provider's simulator as queue `q`: launch a job (queued or running), move it on."""

    launch: Callable[[bool], str]  # queued? -> how a person names the job
    move: Callable[[str, str], None]  # (that name, running | succeeded | failed)


def sagemaker_kit() -> Kit:
    q = sim_queue("sagemaker")
    names = iter(f"bert-{n}" for n in range(100))

    def launch(queued: bool) -> str:
        name = next(names)
        q.sim.add(name, status="InProgress", secondary="Starting" if queued else "Training")
        return name

    def move(ref: str, to: str) -> None:
        if to == "running":
            q.sim.set(ref, "InProgress", "Training")
        elif to == "succeeded":
            q.sim.set(ref, "Completed", "Completed")
        else:
            q.sim.set(ref, "Failed", "Failed", reason="CUDA out of memory <@U0HACKER>")

    return Kit(**vars(q), launch=launch, move=move)


def batch_kit() -> Kit:
    q = sim_queue("batch")
    names = iter(f"llama-{n}" for n in range(100))

    def launch(queued: bool) -> str:
        return str(q.sim.add(next(names), "RUNNABLE" if queued else "RUNNING").job_id)

    def move(ref: str, to: str) -> None:
        q.sim.set(ref, {"running": "RUNNING", "succeeded": "SUCCEEDED"}.get(to, "FAILED"), reason="Essential exit 1")

    return Kit(**vars(q), launch=launch, move=move)


def pai_kit() -> Kit:
    q = sim_queue("pai")
    names = iter(f"qwen-{n}" for n in range(100))
    sources: dict[str, str] = {}

    def launch(queued: bool) -> str:
        run = q.sim.add(next(names), "Creating" if queued else "Running")
        sources[run.ident] = run.source_id
        return str(run.ident)

    def move(ref: str, to: str) -> None:
        q.sim.set(sources[ref], {"running": "Running", "succeeded": "Succeed"}.get(to, "Failed"))

    return Kit(**vars(q), launch=launch, move=move)


def modzy_kit() -> Kit:
    q = sim_queue("modzy")

    def launch(queued: bool) -> str:
        return str(q.sim.add("ocr", "SUBMITTED" if queued else "IN_PROGRESS").ident)

    def move(ref: str, to: str) -> None:
        q.sim.set(ref, {"running": "IN_PROGRESS", "succeeded": "COMPLETED"}.get(to, "ERROR"))

    return Kit(**vars(q), launch=launch, move=move)


def aitems_kit() -> Kit:
    q = sim_queue("aitems")
    idents: dict[str, str] = {}

    def launch(queued: bool) -> str:
        train = q.sim.add("personalRecommend", "requested" if queued else "learning")
        idents[train.version] = train.ident
        return str(train.version)

    def move(ref: str, to: str) -> None:
        q.sim.set(idents[ref], {"running": "learning", "succeeded": "completed"}.get(to, "failed"))

    return Kit(**vars(q), launch=launch, move=move)


KITS = {"sagemaker": sagemaker_kit, "batch": batch_kit, "pai": pai_kit, "modzy": modzy_kit, "aitems": aitems_kit}


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    k = KITS[request.param]()
    yield k
    k.sim.stop()


@pytest.fixture
def sage() -> Iterator[Kit]:
    k = sagemaker_kit()
    yield k
    k.sim.stop()


def make_bot(tmp_path: Path, database_url: str, slack: FakeSlack, kit: Kit, **kw: Any) -> Bot:
    return Bot(tmp_path, slack, kit.queue("q"), env=kit.env, database_url=database_url, **kw)


def buttons(message: dict[str, Any], action_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for block in message.get("blocks") or []:
        elements = list(block.get("elements") or []) + ([block["accessory"]] if "accessory" in block else [])
        found.extend(e for e in elements if e.get("action_id") == action_id)
    return found


def watches(bot: Bot) -> list[Watch]:
    with bot.runtime.db.read() as session:
        return list(session.exec(select(Watch)).all())


@pytest.mark.postgresql_with(kit="sagemaker")
def test_a_watcher_hears_once_when_it_runs_and_once_when_it_ends(
    tmp_path: Path, database_url: str, slack: FakeSlack, kit: Kit
) -> None:
    bot = make_bot(tmp_path, database_url, slack, kit)
    try:
        bot.cycle()  # the baseline
        ref = kit.launch(True)
        bot.cycle()
        answer = text_of(bot.command(f"watch q {ref}", channel="C1", user=ALICE))
        assert "Watching" in answer and "once when it starts running" in answer, answer
        assert slack.dms(ALICE) == []
        kit.move(ref, "running")
        bot.cycle()
        bot.cycle()
        (started,) = slack.dms(ALICE)
        assert "is *running*" in text_of(started)
        assert len(buttons(started, render.UNWATCH_ACTION)) == 1
        kit.move(ref, "succeeded")
        for _ in range(3):
            bot.cycle()
        first, ended = slack.dms(ALICE)
        assert first is started and "ended: *succeeded*" in text_of(ended), text_of(ended)
        assert "this watch has ended" in text_of(ended) and not buttons(ended, render.UNWATCH_ACTION)
        assert watches(bot) == []  # the watch ended with the job
        assert "You watch no jobs" in text_of(bot.command("watching", user=ALICE))
        assert slack.dms(BOB) == [] and slack.posts("C1") == []  # only the watcher hears, nowhere else
        assert slack.problems() == []
    finally:
        bot.close()


def test_watch_button_on_an_alert_and_a_status_reply(
    tmp_path: Path, database_url: str, slack: FakeSlack, sage: Kit
) -> None:
    bot = make_bot(tmp_path, database_url, slack, sage)
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        ref = sage.launch(False)
        bot.cycle()
        (alert,) = slack.posts("C1")
        (button,) = buttons(alert, render.WATCH_ACTION)
        assert json.loads(button["value"])["queue"] == "q"
        answer = text_of(bot.press(render.WATCH_ACTION, button["value"], channel="C1", user=ALICE))
        assert "Watching *bert-0*" in answer, answer
        again = text_of(bot.press(render.WATCH_ACTION, button["value"], channel="C1", user=ALICE))
        assert "already watch" in again
        status = bot.command(f"status q {ref}", channel="C2", user=BOB)
        (from_status,) = buttons(status, render.WATCH_ACTION)
        assert "Watching" in text_of(bot.press(render.WATCH_ACTION, from_status["value"], channel="D0B", user=BOB))
        assert sorted(w.user_id for w in watches(bot)) == [ALICE, BOB]
        sage.move(ref, "failed")
        for _ in range(3):
            bot.cycle()
        for person in (ALICE, BOB):
            (dm,) = slack.dms(person)
            body = text_of(dm)
            assert "ended: *failed*" in body and "CUDA out of memory &lt;@U0HACKER&gt;" in body, body
            assert dm["metadata"]["event_type"] == "jobwatch_alert"
        assert watches(bot) == []
        ended_card = [u for u in slack.updates if u["ts"] == alert["ts"]][-1]
        assert not buttons(ended_card, render.WATCH_ACTION)  # the finished job's card offers no Watch
        assert slack.problems() == []
    finally:
        bot.close()


def test_watching_an_ended_job_is_answered_and_stores_nothing(
    tmp_path: Path, database_url: str, slack: FakeSlack, sage: Kit
) -> None:
    bot = make_bot(tmp_path, database_url, slack, sage)
    try:
        bot.cycle()
        ref = sage.launch(False)
        bot.cycle()
        sage.move(ref, "succeeded")  # the provider knows; the store does not yet
        answer = text_of(bot.command(f"watch q {ref}", user=ALICE))
        assert "already finished (succeeded" in answer and "nothing to watch" in answer, answer
        target = json.dumps({"queue": "q", "job": ref})
        assert "already finished" in text_of(bot.press(render.WATCH_ACTION, target, user=ALICE))
        assert watches(bot) == []
        status = bot.command(f"status q {ref}", user=ALICE)
        assert not buttons(status, render.WATCH_ACTION)
        assert "no job `nope`" in text_of(bot.command("watch q nope", user=ALICE))
        assert "unknown queue" in text_of(bot.command(f"watch elsewhere {ref}", user=ALICE))
        assert "Usage: /jobs watch" in text_of(bot.command("watch q", user=ALICE))
        assert "damaged" in text_of(bot.press(render.WATCH_ACTION, "{not json", user=ALICE))
    finally:
        bot.close()


def test_unwatch_by_command_and_by_the_dm_button(
    tmp_path: Path, database_url: str, slack: FakeSlack, sage: Kit
) -> None:
    bot = make_bot(tmp_path, database_url, slack, sage)
    try:
        bot.cycle()
        first, second = sage.launch(True), sage.launch(True)
        bot.cycle()
        for ref in (first, second):
            assert "Watching" in text_of(bot.command(f"watch q {ref}", user=ALICE))
        listed = bot.command("watching", user=ALICE)
        assert "You watch 2 job(s)" in text_of(listed) and first in text_of(listed)
        assert len(buttons(listed, render.UNWATCH_ACTION)) == 2
        home = bot.open_home(user=ALICE)
        assert "*My jobs*" in text_of(home) and "bert-0" in text_of(home) and "bert-1" in text_of(home)
        assert len(buttons(home, render.UNWATCH_ACTION)) == 2
        assert "My jobs" not in text_of(bot.open_home(user=BOB))  # only the viewer's own
        assert "Stopped watching *bert-0*" in text_of(bot.command(f"unwatch q {first}", user=ALICE))
        assert "do not watch" in text_of(bot.command(f"unwatch q {first}", user=ALICE))
        assert "do not watch" in text_of(bot.command(f"unwatch q {second}", user=BOB))  # only one's own
        sage.move(first, "running")
        sage.move(second, "running")
        bot.cycle()
        bot.cycle()
        (started,) = slack.dms(ALICE)  # the unwatched job says nothing
        assert "bert-1" in text_of(started)
        (button,) = buttons(started, render.UNWATCH_ACTION)
        assert "Stopped watching" in text_of(
            bot.press(render.UNWATCH_ACTION, button["value"], channel="D1", user=ALICE)
        )
        sage.move(second, "succeeded")
        for _ in range(3):
            bot.cycle()
        assert len(slack.dms(ALICE)) == 1 and watches(bot) == []
    finally:
        bot.close()


def test_the_dm_arrives_once_across_a_restart_between_post_and_answer(
    tmp_path: Path, database_url: str, slack: FakeSlack, sage: Kit
) -> None:
    clock = MovableClock()
    bot = make_bot(tmp_path, database_url, slack, sage, clock=clock)
    try:
        bot.cycle()
        ref = sage.launch(False)
        bot.cycle()
        bot.command(f"watch q {ref}", user=ALICE)
        sage.move(ref, "succeeded")
        slack.script("chat.postMessage", Fault(drop=True))  # Slack keeps the DM; its answer is lost
        bot.cycle()
        assert len(slack.dms(ALICE)) == 1
        with bot.runtime.db.read() as session:
            (row,) = session.exec(select(OutboxItem).where(OutboxItem.kind == "dm")).all()
        assert row.state == "sending" and row.channel_id == ALICE
    finally:
        bot.close()  # the process goes away
    clock.offset += timedelta(minutes=2)
    again = make_bot(tmp_path, database_url, slack, sage, clock=clock)
    try:
        for _ in range(2):
            again.cycle()
        assert len(slack.dms(ALICE)) == 1  # found in the IM's history by its metadata, not posted twice
        lookups = [p for m, p in slack.calls if m == "conversations.history"]
        assert lookups and lookups[-1]["channel"] == slack.im(ALICE)
        with again.runtime.db.read() as session:
            (row,) = session.exec(select(OutboxItem).where(OutboxItem.kind == "dm")).all()
        assert row.state == "sent" and row.slack_ts == slack.dms(ALICE)[0]["ts"]
    finally:
        again.close()


def test_a_person_slack_cannot_reach_costs_only_their_dm(
    tmp_path: Path, database_url: str, slack: FakeSlack, sage: Kit
) -> None:
    slack.disabled.add(ALICE)
    bot = make_bot(tmp_path, database_url, slack, sage)
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        ref = sage.launch(False)
        bot.cycle()
        bot.command(f"watch q {ref}", user=ALICE)
        sage.move(ref, "succeeded")
        for _ in range(2):
            bot.cycle()
        with bot.runtime.db.read() as session:
            (row,) = session.exec(select(OutboxItem).where(OutboxItem.kind == "dm")).all()
        assert row.state == "dead" and row.last_error == "user_disabled"
        assert len(slack.posts("C1")) == 2  # the channel's alerts go on
    finally:
        bot.close()
