"""PAI end to end: a run's transitions (read from its training job) reach the subscribed channel once each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.sim.pai import PaiSim
from bot.sim.slack import FakeSlack
from providers.alibaba_pai import PAGE_SIZE
from tests.harness import Bot, text_of


@pytest.fixture
def pai() -> Iterator[PaiSim]:
    sim = PaiSim().start()
    yield sim
    sim.stop()


@pytest.mark.parametrize("age_days", [0, 30], ids=["new-run", "old-run-rechecked-as-live"])
def test_pai_flow(tmp_path: Path, database_url: str, slack: FakeSlack, pai: PaiSim, age_days: int) -> None:
    config = f"""
[[queues]]
name = "pai-runs"
provider = "pai"
region = "cn-shanghai"
workspace_id = "{pai.workspace_id}"
endpoint_url = "{pai.url}"
"""
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": pai.access_key_id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": pai.access_key_secret}
    bot = Bot(tmp_path, slack, config, env=env, database_url=database_url)
    try:
        # An old run falls out of the newest ListRuns page: only the live re-check can see it move.
        run = pai.add("qwen-sft", "Creating", when=datetime.now(UTC) - timedelta(days=age_days))
        if age_days:
            for n in range(PAGE_SIZE):
                pai.add(f"notebook-{n}", kind="", when=datetime.now(UTC) - timedelta(hours=1))
        bot.command("subscribe pai-runs", channel="C1")
        bot.cycle()
        pai.set(run.source_id, "Running")
        bot.cycle()
        pai.set(run.source_id, "Failed", reason=("AlgorithmError", "CUDA out of memory"))
        bot.cycle()
        bot.cycle()
        posted = [params["text"] for method, params in slack.calls if method == "chat.postMessage"]
        assert posted == ["qwen-sft in pai-runs: Running", "qwen-sft in pai-runs: Failed"]
        assert "CUDA out of memory" in text_of(slack.posts("C1")[1])
        if age_days:
            assert pai.calls["ListRuns"] == 5  # the baseline's two pages, then only the newest one
        else:
            assert "qwen-sft" in text_of(bot.command("list pai-runs"))
        assert "failed" in text_of(bot.command(f"status pai-runs {run.ident}"))
    finally:
        bot.close()


def test_pai_dlc_restarts_are_thread_notes(tmp_path: Path, database_url: str, slack: FakeSlack, pai: PaiSim) -> None:
    config = f"""
[[queues]]
name = "pai-runs"
provider = "pai"
region = "cn-shanghai"
workspace_id = "{pai.workspace_id}"
endpoint_url = "{pai.url}"
"""
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": pai.access_key_id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": pai.access_key_secret}
    bot = Bot(tmp_path, slack, config, env=env, database_url=database_url)
    try:
        run = pai.add("llama-pretrain", "Queuing", kind="DLC")
        bot.command("subscribe pai-runs", channel="C1")
        bot.cycle()  # baseline
        pai.set(run.source_id, "Running")
        bot.cycle()
        pai.restart(run.source_id, "JobPreempted: the spot instance was reclaimed")
        bot.cycle()
        pai.set(run.source_id, "Running")
        bot.cycle()
        bot.cycle()
        pai.restart(run.source_id, "JobFailed: Worker 0 exited with code 137 (OOMKilled)")
        pai.set(run.source_id, "Running")  # restarted and running again between two polls
        bot.cycle()
        pai.set(run.source_id, "Failed", reason=("JobFailed", "Worker 0 exited with code 1"))
        bot.cycle()
        bot.cycle()
        posted = [params["text"] for method, params in slack.calls if method == "chat.postMessage"]
        assert posted == [
            "llama-pretrain in pai-runs: Running",
            "attempt 1 failed: spot_interruption, retrying",
            "attempt 2 failed: out_of_memory, retrying",
            "llama-pretrain in pai-runs: Failed",
        ]
        parent, *replies = slack.posts("C1")
        assert all(r["thread_ts"] == parent["ts"] for r in replies)
        assert pai.calls["GetJob"] == 2  # one per restart, for its reason; none for the other polls
    finally:
        bot.close()
