"""`subscribe --match GLOB` through the whole pipeline: a job that does not match never alerts the
channel, one that matches always does (new jobs, known jobs, digests, filters changed meanwhile)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select

from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.tables import OutboxItem
from tests.conftest import AWS_ENV
from tests.harness import Bot, queue_config, text_of


def names(slack: FakeSlack, channel: str) -> list[str]:
    """The job each alert posted to `channel` is about (alerts are `<job> in <queue> is <status>`)."""
    return [p["text"].split()[0] for p in slack.posts(channel)]


def poll_only(bot: Bot) -> None:
    """Poll every queue without delivering: the alerts wait in the outbox."""
    bot.runtime.worker.renew()
    bot.runtime.worker.poll_all()


def test_match_decides_for_known_and_new_jobs(ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    sagemaker.add("train-a", status="InProgress", secondary="Training")
    sagemaker.add("eval-b", status="InProgress", secondary="Training")
    assert "Subscribed" in text_of(ml.command("subscribe ml --match train-*", channel="C1"))
    assert "Subscribed" in text_of(ml.command("subscribe ml", channel="C2"))
    ml.cycle()  # baseline

    sagemaker.set("train-a", "Completed", "Completed")
    sagemaker.set("eval-b", "Completed", "Completed")
    sagemaker.add("train-c", status="InProgress", secondary="Training")
    sagemaker.add("eval-d", status="InProgress", secondary="Training")
    ml.cycle()
    assert sorted(names(slack, "C1")) == ["train-a", "train-c"]
    assert sorted(names(slack, "C2")) == ["eval-b", "eval-d", "train-a", "train-c"]


def test_changed_filters_decide_for_alerts_still_waiting(ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    sagemaker.add("train-a", status="InProgress", secondary="Training")
    sagemaker.add("eval-b", status="InProgress", secondary="Training")
    assert "Subscribed" in text_of(ml.command("subscribe ml --match train-*", channel="C1"))
    assert "Subscribed" in text_of(ml.command("subscribe ml", channel="C2"))
    ml.cycle()  # baseline

    sagemaker.set("train-a", "Completed", "Completed")
    sagemaker.set("eval-b", "Failed", "Failed", reason="OOM")
    poll_only(ml)  # train-a's alert for C1 waits (a backlog, an outage, a rate limit)
    assert "Updated" in text_of(ml.command("subscribe ml --match eval-*", channel="C1"))
    assert "Unsubscribed" in text_of(ml.command("unsubscribe ml", channel="C2"))
    ml.runtime.worker.deliver()
    assert slack.posts() == []  # train-a no longer matches C1; C2 no longer subscribes

    sagemaker.add("train-e", status="InProgress", secondary="Training")
    sagemaker.add("eval-f", status="InProgress", secondary="Training")
    ml.cycle()
    assert names(slack, "C1") == ["eval-f"]
    with ml.runtime.db.read() as session:
        owed = session.exec(select(OutboxItem).where(col(OutboxItem.state).in_(("pending", "sending")))).all()
    assert owed == []


def test_alerts_held_by_a_mute_follow_changed_filters(ml: Bot, slack: FakeSlack, sagemaker: SageMakerSim) -> None:
    sagemaker.add("train-a", status="InProgress", secondary="Training")
    assert "Subscribed" in text_of(ml.command("subscribe ml --match train-*", channel="C1"))
    ml.cycle()  # baseline
    assert "Muted ml" in text_of(ml.command("mute ml 2h", channel="C1"))
    sagemaker.set("train-a", "Completed", "Completed")
    ml.cycle()  # held by the mute
    assert "Updated" in text_of(ml.command("subscribe ml --match eval-*", channel="C1"))
    assert "0 alert(s) were held back" in text_of(ml.command("unmute ml", channel="C1"))
    ml.cycle()
    assert slack.posts() == []


def test_a_digest_lists_only_matching_jobs(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    config = queue_config(sagemaker, "[bot]\ndigest_threshold = 2\n")
    bot = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url)
    try:
        jobs = [f"{kind}-{n}" for kind in ("train", "eval") for n in range(3)]
        for name in jobs:
            sagemaker.add(name, status="InProgress", secondary="Training")
        assert "Subscribed" in text_of(bot.command("subscribe ml --match train-*", channel="C1"))
        bot.cycle()  # baseline
        for name in jobs:
            sagemaker.set(name, "Completed", "Completed")
        bot.cycle()
        shown = "\n".join(text_of(p) for p in slack.posts("C1"))
        assert all(f"train-{n}" in shown for n in range(3)), shown
        assert "eval-" not in shown
    finally:
        bot.close()
