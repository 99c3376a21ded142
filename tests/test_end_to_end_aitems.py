"""NAVER AiTEMS end to end: a training's transitions reach the subscribed channel once each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sim.aitems import AitemsSim
from bot.sim.slack import FakeSlack
from tests.harness import Bot, SimQueue, sim_queue, text_of


@pytest.fixture
def reco() -> Iterator[SimQueue]:
    q = sim_queue("aitems")
    yield q
    q.sim.stop()


@pytest.fixture
def aitems(reco: SimQueue) -> AitemsSim:
    sim: AitemsSim = reco.sim
    return sim


@pytest.fixture
def bot(tmp_path: Path, database_url: str, slack: FakeSlack, reco: SimQueue) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, reco.queue("reco"), env=reco.env, database_url=database_url)
    yield b
    b.close()


@pytest.mark.sqlite_only  # the provider's adapter on its simulator; the store path is tests/test_end_to_end.py's
def test_aitems_flow(bot: Bot, slack: FakeSlack, aitems: AitemsSim) -> None:
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


def test_a_train_is_found_by_its_version(bot: Bot, aitems: AitemsSim) -> None:
    """The API and the NAVER console name a train by its version: `status` and `mute` take it, any case."""
    train = aitems.add("personalRecommend", "learning", version="Ver20240501a")
    aitems.add("relatedItem", "completed", version="ver20240430")
    bot.cycle()
    status = text_of(bot.command(f"status reco {train.version.upper()}"))
    assert f"*personalRecommend {train.version}*" in status and "running" in status
    assert "other job" not in status
    muted = text_of(bot.command(f"mute reco {train.version.lower()} 1h", channel="C1"))
    assert f"job personalRecommend {train.version} in reco" in muted
    unmuted = text_of(bot.command(f"unmute reco {train.version}", channel="C1"))
    assert f"Unmuted job personalRecommend {train.version} in reco" in unmuted
    assert "no job `v9` in queue `reco` (try `/jobs list reco`)" in text_of(bot.command("status reco v9"))
