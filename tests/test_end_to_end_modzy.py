"""Modzy end to end: an inference job's transitions reach the subscribed channel once each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sim.modzy import ModzySim
from bot.sim.slack import FakeSlack
from tests.harness import Bot, text_of


@pytest.fixture
def modzy() -> Iterator[ModzySim]:
    sim = ModzySim().start()
    yield sim
    sim.stop()


def test_modzy_flow(tmp_path: Path, database_url: str, slack: FakeSlack, modzy: ModzySim) -> None:
    config = f"""
[[queues]]
name = "inference"
provider = "modzy"
endpoint_url = "{modzy.url}"
"""
    bot = Bot(tmp_path, slack, config, env={"MODZY_API_KEY": modzy.api_key}, database_url=database_url)
    try:
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
    finally:
        bot.close()
