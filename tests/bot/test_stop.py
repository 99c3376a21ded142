"""Stopping a job from Slack, through the real HTTP app, against each provider's simulator.

Every simulator records the stop calls it receives (`stops`), so each test counts provider calls:
exactly one where a stop is due, none for every refusal. Every outcome leaves one audit row.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.blocks import render
from bot.core.clock import utcnow
from bot.sim.slack import FakeSlack
from bot.store.tables import AuditEntry, StopRequest
from tests.harness import Bot, SimQueue, sim_queue, text_of

OPERATOR = "UOP0001"
OTHER = "UOTHER01"


@dataclass
class World(SimQueue):
    """One provider's simulator, seen as a queue called `q`."""

    running: Callable[[], str]  # start a running job; returns how a person names it
    stops: Callable[[], int]  # stop calls the simulator received


def sagemaker_world() -> World:
    q = sim_queue("sagemaker")
    names = iter(f"bert-{n}" for n in range(100))

    def running() -> str:
        name = next(names)
        q.sim.add(name, status="InProgress", secondary="Training")
        return name

    return World(**vars(q), running=running, stops=lambda: len(q.sim.stops))


def batch_world() -> World:
    q = sim_queue("batch")
    names = iter(f"llama-{n}" for n in range(100))
    return World(**vars(q), running=lambda: str(q.sim.add(next(names), "RUNNING").name), stops=lambda: len(q.sim.stops))


def pai_world() -> World:
    q = sim_queue("pai")
    names = iter(f"qwen-{n}" for n in range(100))
    return World(
        **vars(q), running=lambda: str(q.sim.add(next(names), "Running").ident), stops=lambda: len(q.sim.stops)
    )


def modzy_world() -> World:
    q = sim_queue("modzy")
    return World(**vars(q), running=lambda: str(q.sim.add("ocr", "IN_PROGRESS").ident), stops=lambda: len(q.sim.stops))


def aitems_world() -> World:
    q = sim_queue("aitems")
    return World(**vars(q), running=lambda: str(q.sim.add("personalRecommend", "learning").version), stops=lambda: 0)


WORLDS = {"sagemaker": sagemaker_world, "batch": batch_world, "pai": pai_world, "modzy": modzy_world}


def make_bot(
    tmp_path: Path, database_url: str, slack: FakeSlack, world: World, *, operators: str = OPERATOR, queue: str = ""
) -> Bot:
    config = f"""
[access]
operators = ["{operators}"]

{world.queue("q")}{queue}
"""
    return Bot(tmp_path, slack, config, env=world.env, database_url=database_url)


@pytest.fixture(params=sorted(WORLDS))
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    w = WORLDS[request.param]()
    yield w
    w.sim.stop()


@pytest.fixture
def sage() -> Iterator[World]:
    w = sagemaker_world()
    yield w
    w.sim.stop()


def stop_button(message: dict[str, Any]) -> dict[str, Any] | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == render.STOP_ACTION:
                return dict(element)
    return None


def audits(bot: Bot) -> list[AuditEntry]:
    with bot.runtime.db.read() as session:
        return list(
            session.exec(
                select(AuditEntry).where(col(AuditEntry.action).startswith("stop")).order_by(col(AuditEntry.id))
            ).all()
        )


def alerted(bot: Bot, world: World, channel: str = "C1") -> tuple[str, dict[str, Any]]:
    """A running job announced in `channel`: (its reference, the alert's parent message)."""
    bot.command("subscribe q", channel=channel)
    bot.cycle()  # the baseline
    ref = world.running()
    bot.cycle()
    (parent,) = bot.slack.posts(channel)
    return ref, parent


def stop_via_command(bot: Bot, text: str, *, channel: str = "C1", user: str = OPERATOR) -> str:
    """`/jobs stop <text>`, then a press of the Stop button its reply carries: the press's answer."""
    reply = bot.command(f"stop {text}", channel=channel, user=user)
    button = stop_button(reply)
    assert button is not None, text_of(reply)
    return text_of(bot.press(render.STOP_ACTION, button["value"], channel=channel, user=user))


def settle(bot: Bot, cycles: int = 4) -> None:
    for _ in range(cycles):
        bot.cycle()


def assert_stopped_in_thread(bot: Bot, parent: dict[str, Any], reason: str) -> None:
    replies = [p for p in bot.slack.posts("C1") if p.get("thread_ts") == parent["ts"]]
    notes = [p for p in replies if "Stop requested by" in text_of(p)]
    assert len(notes) == 1, [text_of(p) for p in replies]
    assert f"<@{OPERATOR}>" in text_of(notes[0]) and reason in text_of(notes[0])
    updates = [u for u in bot.slack.updates if u["ts"] == parent["ts"]]
    assert updates and "now *stopped*" in text_of(updates[-1])
    assert stop_button(updates[-1]) is None  # the live card loses its Stop button once terminal
    statuses = [text_of(p) for p in replies if p not in notes]
    assert statuses, "the transitions after the stop reach the thread"


@pytest.mark.postgresql_with(world="sagemaker")
def test_stop_command_reaches_the_provider_once_and_the_thread(
    tmp_path: Path, database_url: str, slack: FakeSlack, world: World
) -> None:
    bot = make_bot(tmp_path, database_url, slack, world)
    try:
        ref, parent = alerted(bot, world)
        assert stop_button(parent) is not None
        reply = stop_via_command(bot, f"q {ref} runaway GPU job")
        assert "Stop requested" in reply, reply
        assert world.stops() == 1
        settle(bot)
        assert_stopped_in_thread(bot, parent, "runaway GPU job")
        assert [a.outcome for a in audits(bot)] == ["ok"]
    finally:
        bot.close()


@pytest.mark.postgresql_with(world="sagemaker")
def test_stop_button_asks_to_confirm_then_stops_once(
    tmp_path: Path, database_url: str, slack: FakeSlack, world: World
) -> None:
    bot = make_bot(tmp_path, database_url, slack, world)
    try:
        _, parent = alerted(bot, world)
        button = stop_button(parent)
        assert button is not None and button["style"] == "danger"
        confirm = button["confirm"]["text"]["text"]
        assert "queue q" in confirm and world.provider in confirm and "cannot be undone" in confirm
        answer = text_of(bot.press(render.STOP_ACTION, button["value"], channel="C1", user=OPERATOR))
        assert "Stop requested" in answer, answer
        # A second press (a double click, a replay): the provider's fresh answer may already say
        # stopping (Batch) or stopped (Modzy cancels at once); in no case is it asked again.
        again = text_of(bot.press(render.STOP_ACTION, button["value"], channel="C1", user=OPERATOR))
        assert any(w in again for w in ("already requested", "already stopping", "already finished (stopped")), again
        assert world.stops() == 1
        settle(bot)
        assert_stopped_in_thread(bot, parent, "")
        assert [a.outcome for a in audits(bot)] in (["ok", "duplicate"], ["ok", "stopping"], ["ok", "finished"])
    finally:
        bot.close()


@pytest.mark.sqlite_only
def test_aitems_says_not_supported_and_shows_no_button(tmp_path: Path, database_url: str, slack: FakeSlack) -> None:
    world = aitems_world()
    bot = make_bot(tmp_path, database_url, slack, world)
    try:
        ref, parent = alerted(bot, world)
        assert stop_button(parent) is None
        assert "not supported by aitems" in text_of(bot.command(f"stop q {ref}", channel="C1", user=OPERATOR))
        assert [a.outcome for a in audits(bot)] == ["refused"]
    finally:
        bot.close()
        world.sim.stop()


@pytest.mark.parametrize(
    ("user", "channel", "queue_keys", "expected"),
    [
        (OTHER, "C1", "", "only the operators of queue `q`"),
        (OPERATOR, "C2", 'channels = ["C1"]', "may not be stopped from this channel"),
        (OPERATOR, "D0001", "", "not from a direct message"),
        (OPERATOR, "C1", "operators = []", "nobody may stop jobs of queue `q`"),
        (OPERATOR, "C1", f'operators = ["{OTHER}"]', "only the operators of queue `q`"),
    ],
    ids=["non-operator", "disallowed-channel", "dm", "queue-without-operators", "queue-list-replaces-global"],
)
def test_refusals_call_nothing_and_are_audited(
    tmp_path: Path,
    database_url: str,
    slack: FakeSlack,
    sage: World,
    user: str,
    channel: str,
    queue_keys: str,
    expected: str,
) -> None:
    bot = make_bot(tmp_path, database_url, slack, sage, queue=queue_keys)
    try:
        ref, _ = alerted(bot, sage)
        target = json.dumps({"queue": "q", "job": ref})
        by_command = text_of(bot.command(f"stop q {ref}", channel=channel, user=user))
        by_button = text_of(bot.press(render.STOP_ACTION, target, channel=channel, user=user))
        assert expected in by_command and expected in by_button, (by_command, by_button)
        assert sage.stops() == 0
        assert [a.outcome for a in audits(bot)] == ["refused", "refused"]
        assert {a.user_id for a in audits(bot)} == {user}
    finally:
        bot.close()


@pytest.mark.sqlite_only
def test_forged_and_stale_buttons(tmp_path: Path, database_url: str, slack: FakeSlack, sage: World) -> None:
    bot = make_bot(tmp_path, database_url, slack, sage)
    try:
        ref, parent = alerted(bot, sage)
        assert "damaged" in text_of(bot.press(render.STOP_ACTION, "not json", channel="C1", user=OPERATOR))
        forged = json.dumps({"queue": "q", "job": "no-such-job"})
        assert "no job `no-such-job`" in text_of(bot.press(render.STOP_ACTION, forged, channel="C1", user=OPERATOR))
        other_queue = json.dumps({"queue": "elsewhere", "job": ref})
        assert "unknown queue" in text_of(bot.press(render.STOP_ACTION, other_queue, channel="C1", user=OPERATOR))
        # A button on an old alert whose job has finished since: the provider's current state wins.
        button = stop_button(parent)
        assert button is not None
        sage.sim.set(ref, "Completed", "Completed")
        stale = text_of(bot.press(render.STOP_ACTION, button["value"], channel="C1", user=OPERATOR))
        assert "already finished (succeeded" in stale, stale
        assert sage.stops() == 0
        assert [a.outcome for a in audits(bot)] == ["not_found", "refused", "finished"]
    finally:
        bot.close()


def test_two_people_pressing_together_stop_once(
    tmp_path: Path, database_url: str, slack: FakeSlack, sage: World
) -> None:
    bot = make_bot(tmp_path, database_url, slack, sage, operators=f'{OPERATOR}", "{OTHER}')
    try:
        _, parent = alerted(bot, sage)
        button = stop_button(parent)
        assert button is not None
        answers: list[str] = []

        def press(user: str) -> None:
            answers.append(text_of(bot.press(render.STOP_ACTION, button["value"], channel="C1", user=user)))

        threads = [threading.Thread(target=press, args=(u,)) for u in (OPERATOR, OTHER, OPERATOR, OTHER)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sage.stops() == 1
        assert sum("Stop requested" in a for a in answers) == 1
        # The others find the request, or, pressing late, the job already stopping or stopped at the
        # provider (each status refresh moves the simulator on); none of them calls again.
        later = ("already requested", "already stopping", "already finished (stopped")
        assert sum(any(w in a for w in later) for a in answers) == 3, answers
        with bot.runtime.db.read() as session:
            (row,) = session.exec(select(StopRequest)).all()
        assert row.state == "accepted" and row.user_id in (OPERATOR, OTHER)
    finally:
        bot.close()


@pytest.mark.parametrize(
    ("kind", "expected", "state"),
    [("denied", "may not stop this job", "refused"), ("throttle", "throttling", "failed")],
)
def test_a_provider_refusal_is_shown_in_plain_words_and_not_retried(
    tmp_path: Path, database_url: str, slack: FakeSlack, kind: str, expected: str, state: str
) -> None:
    world = batch_world()
    bot = make_bot(tmp_path, database_url, slack, world)
    try:
        ref, _ = alerted(bot, world)
        # the status refreshes (the command's and the press's) go through; the stop is refused
        world.sim.faults.extend(["pass", "pass", kind])
        answer = stop_via_command(bot, f"q {ref}")
        assert "Could not stop" in answer and expected in answer, answer
        assert world.stops() == 1  # asked once, never again by itself
        bot.cycle()
        assert world.stops() == 1
        assert not [p for p in slack.posts("C1") if "Stop requested" in text_of(p)]
        assert [a.outcome for a in audits(bot)] == [state]
        # A person may ask again after a refusal: the same row, one more call.
        assert "Stop requested" in stop_via_command(bot, f"q {ref}")
        assert world.stops() == 2
    finally:
        bot.close()
        world.sim.stop()


@pytest.mark.sqlite_only
def test_stop_usage_errors(tmp_path: Path, database_url: str, slack: FakeSlack, sage: World) -> None:
    bot = make_bot(tmp_path, database_url, slack, sage)
    try:
        assert "Usage: /jobs stop &lt;queue&gt; &lt;job&gt;" in text_of(bot.command("stop q", user=OPERATOR))
        assert "reason under" in text_of(bot.command("stop q job " + "x" * 300, user=OPERATOR))
        assert sage.stops() == 0
    finally:
        bot.close()


def test_a_request_left_by_a_crashed_process_does_not_block_the_job_for_ever(
    tmp_path: Path, database_url: str, slack: FakeSlack, sage: World
) -> None:
    bot = make_bot(tmp_path, database_url, slack, sage)
    try:
        ref, _ = alerted(bot, sage)
        job_id = bot.runtime.services.current("q", ref).id
        with bot.runtime.db.write() as session:  # recorded, then the process died before the call
            stamp = utcnow() - timedelta(minutes=5)
            session.add(
                StopRequest(
                    queue="q", job_id=job_id, team_id="T0001", channel_id="C1", user_id=OTHER, requested_at=stamp
                )
            )
        assert "Stop requested" in stop_via_command(bot, f"q {ref}")
        assert sage.stops() == 1
    finally:
        bot.close()


@pytest.mark.postgresql_with(world="sagemaker")
def test_the_command_only_shows_the_job_it_resolved_and_a_confirmed_button(
    tmp_path: Path, database_url: str, slack: FakeSlack, world: World
) -> None:
    bot = make_bot(tmp_path, database_url, slack, world)
    try:
        ref, _ = alerted(bot, world)
        job = bot.runtime.services.current("q", ref)
        reply = bot.command(f"stop q {ref} runaway GPU job", channel="C1", user=OPERATOR)
        shown = text_of(reply)
        assert job.name in shown and job.id in shown and world.provider in shown, shown
        assert job.status.value in shown and "Owner:" in shown and "runaway GPU job" in shown
        button = stop_button(reply)
        assert (
            button is not None
            and button["style"] == "danger"
            and "cannot be undone" in button["confirm"]["text"]["text"]
        )
        assert json.loads(button["value"]) == {"queue": "q", "job": job.id, "reason": "runaway GPU job"}
        settle(bot, 2)  # time passes; nobody presses
        assert world.stops() == 0
        with bot.runtime.db.read() as session:
            assert not session.exec(select(StopRequest)).all()
        assert audits(bot) == []  # nothing was changed, so nothing to audit yet
    finally:
        bot.close()


@pytest.mark.sqlite_only
def test_a_name_shared_by_several_jobs_names_the_newest_and_says_so(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    sage = batch_world()  # Batch job names need not be unique
    bot = make_bot(tmp_path, database_url, slack, sage)
    try:
        bot.command("subscribe q", channel="C1")
        bot.cycle()
        sage.sim.add("nightly", "RUNNING")
        bot.cycle()
        sage.sim.add("nightly", "RUNNING")
        bot.cycle()
        newest = bot.runtime.services.current("q", "nightly")
        reply = bot.command("stop q nightly", channel="C1", user=OPERATOR)
        assert newest.id in text_of(reply) and "1 other job(s) match" in text_of(reply), text_of(reply)
        button = stop_button(reply)
        assert button is not None and json.loads(button["value"])["job"] == newest.id
        assert sage.stops() == 0
        assert "Stop requested" in text_of(bot.press(render.STOP_ACTION, button["value"], channel="C1", user=OPERATOR))
        assert sage.stops() == 1
    finally:
        bot.close()
        sage.sim.stop()
