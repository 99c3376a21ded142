"""A failing provider: no per-job noise, one outage notice after K failed polls, one on recovery."""

from __future__ import annotations

from pathlib import Path

from bot.sim.modzy import ModzySim
from bot.sim.slack import FakeSlack
from tests.harness import Bot, text_of


def test_outage_and_recovery_are_each_announced_once(tmp_path: Path, slack: FakeSlack) -> None:
    modzy = ModzySim().start()
    config = f"""
[bot]
failure_threshold = 3
ops_channel = "COPS"

[[queues]]
name = "inference"
provider = "modzy"
endpoint_url = "{modzy.url}"
"""
    bot = Bot(tmp_path, slack, config, env={"MODZY_API_KEY": modzy.api_key})
    try:
        job = modzy.add("ocr")
        bot.command("subscribe inference", channel="C1")
        bot.cycle()
        for _ in range(5):  # five polls refused (credentials rotated, say)
            modzy.faults.append("auth")
            modzy.set(job.ident, "IN_PROGRESS")
            bot.cycle()
        assert slack.posts("C1") == []  # a failed listing never produces an alert
        (outage,) = slack.posts("COPS")
        assert "inference has failed 3 polls in a row" in outage["text"] and "AuthError" in outage["text"]
        assert "failing (5 polls)" in text_of(bot.command("queues"))
        bot.cycle()  # the provider answers again
        assert [m["text"] for m in slack.posts("C1")] == [f"{job.ident} (ocr) in inference: IN_PROGRESS"]
        notices = slack.posts("COPS")
        assert len(notices) == 2 and "polling again after 5 failed polls" in notices[1]["text"]
        bot.cycle()
        assert len(slack.posts("COPS")) == 2
    finally:
        bot.close()
        modzy.stop()
