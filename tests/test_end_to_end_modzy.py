"""Modzy end to end: an inference job's transitions reach the subscribed channel once each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sim.modzy import ModzySim
from bot.sim.slack import FakeSlack
from tests.harness import Bot, SimQueue, sim_queue, text_of


@pytest.fixture
def inference() -> Iterator[SimQueue]:
    q = sim_queue("modzy")
    yield q
    q.sim.stop()


@pytest.fixture
def modzy(inference: SimQueue) -> ModzySim:
    sim: ModzySim = inference.sim
    return sim


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, inference: SimQueue) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, inference.queue("inference"), env=inference.env, database_url=database_url)
    yield b
    b.close()


@pytest.mark.sqlite_only  # the provider's adapter on its simulator; the store path is tests/test_end_to_end.py's
def test_modzy_flow(bot: Bot, slack: FakeSlack, modzy: ModzySim) -> None:
    job = modzy.add("ocr")
    bot.command("subscribe inference", channel="C1")
    bot.cycle()
    modzy.set(job.ident, "IN_PROGRESS", completed=0)
    bot.cycle()
    modzy.set(job.ident, "COMPLETED", failed=2)
    bot.cycle()
    bot.cycle()
    posted = [params["text"] for method, params in slack.calls if method == "chat.postMessage"]
    assert posted == [f"{job.ident} (ocr) in inference: IN_PROGRESS", f"{job.ident} (ocr) in inference: COMPLETED"]
    assert "2 of 10 inputs failed" in text_of(slack.posts("C1")[1])
    assert job.ident in text_of(bot.command("list inference"))
    assert "succeeded" in text_of(bot.command(f"status inference {job.ident}"))
