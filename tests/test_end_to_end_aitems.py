"""NAVER AiTEMS end to end: a training's transitions reach the subscribed channel once each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sim.aitems import AitemsSim
from bot.sim.slack import FakeSlack
from tests.harness import Bot, text_of


@pytest.fixture
def aitems() -> Iterator[AitemsSim]:
    sim = AitemsSim().start()
    yield sim
    sim.stop()


def test_aitems_flow(tmp_path: Path, database_url: str, slack: FakeSlack, aitems: AitemsSim) -> None:
    config = f"""
[[queues]]
name = "reco"
provider = "aitems"
service_id = "{aitems.service_id}"
endpoint_url = "{aitems.url}"
"""
    env = {"NCP_ACCESS_KEY": aitems.access_key, "NCP_SECRET_KEY": aitems.secret_key}
    bot = Bot(tmp_path, slack, config, env=env, database_url=database_url)
    try:
        train = aitems.add("personalRecommend", "requested")
        bot.command("subscribe reco", channel="C1")
        bot.cycle()
        aitems.set(train.ident, "learning")
        bot.cycle()
        aitems.set(train.ident, "failed")
        bot.cycle()
        bot.cycle()
        name = f"personalRecommend {train.version}"
        posted = [params["text"] for method, params in slack.calls if method == "chat.postMessage"]
        assert posted == [f"{name} in reco: learning", f"{name} in reco: failed"]
        assert all(p["channel"] == "C1" for m, p in slack.calls if m == "chat.postMessage")
        assert train.version in text_of(bot.command("list reco"))
        assert "failed" in text_of(bot.command(f"status reco {train.ident}"))
        assert aitems.refused == []
    finally:
        bot.close()
