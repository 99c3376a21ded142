"""A failing provider: no per-job noise, one outage notice after K failed polls, one on recovery.

A poll that fails in any way (a provider error, or a bug anywhere from the listing to the commit)
is counted and announced the same way; a failure that waiting cannot cure (refused credentials)
is announced at once, saying what to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from sqlalchemy import text

from bot.sim.http import BAD_DETAIL
from bot.sim.modzy import ModzySim
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from providers import Job, JobSource, QueueConfig
from providers.sagemaker import SageMakerQueue, SageMakerSource
from tests.conftest import AWS_ENV
from tests.harness import Bot, queue_config, text_of


def modzy_bot(tmp_path: Path, slack: FakeSlack, modzy: ModzySim) -> Bot:
    config = f"""
[bot]
failure_threshold = 3
ops_channel = "COPS"

[[queues]]
name = "inference"
provider = "modzy"
endpoint_url = "{modzy.url}"
"""
    return Bot(tmp_path, slack, config, env={"MODZY_API_KEY": modzy.api_key})


def polls(bot: Bot, queue: str, outcome: str) -> float:
    value = bot.runtime.metrics.registry.get_sample_value("jobwatch_polls_total", {"queue": queue, "outcome": outcome})
    return value or 0.0


def test_outage_and_recovery_are_each_announced_once(tmp_path: Path, slack: FakeSlack) -> None:
    modzy = ModzySim().start()
    bot = modzy_bot(tmp_path, slack, modzy)
    try:
        job = modzy.add("ocr")
        bot.command("subscribe inference", channel="C1")
        bot.cycle()
        for _ in range(5):  # five polls answered by a proxy's error page
            modzy.faults.append("html")
            modzy.set(job.ident, "IN_PROGRESS")
            bot.cycle()
        assert slack.posts("C1") == []  # a failed listing never produces an alert
        (outage,) = slack.posts("COPS")
        assert "inference has failed 3 polls in a row" in outage["text"] and "BadResponseError" in outage["text"]
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


def test_refused_credentials_are_announced_at_once_with_what_to_check(tmp_path: Path, slack: FakeSlack) -> None:
    modzy = ModzySim().start()
    bot = modzy_bot(tmp_path, slack, modzy)
    try:
        modzy.add("ocr")
        bot.cycle()
        modzy.faults.append("auth")  # the key was revoked, say
        bot.cycle()
        (notice,) = slack.posts("COPS")  # after one poll, not failure_threshold (3)
        assert notice["text"].startswith("Queue inference cannot poll: the provider refused the credentials")
        assert "Check the key variables" in notice["text"] and "AuthError" in notice["text"]
        modzy.faults.extend(["auth", "auth"])
        bot.cycle()
        bot.cycle()
        assert len(slack.posts("COPS")) == 1  # once per outage
        assert "failing (3 polls)" in text_of(bot.command("queues"))
        bot.cycle()
        assert "polling again after 3 failed polls" in slack.posts("COPS")[1]["text"]
    finally:
        bot.close()
        modzy.stop()


def test_a_malformed_detail_answer_still_alerts_without_a_reason(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    bot = Bot(tmp_path, slack, queue_config(sagemaker, '[bot]\nops_channel = "COPS"'), env=AWS_ENV)
    try:
        sagemaker.add("bert", status="InProgress", secondary="Training")
        bot.command("subscribe ml", channel="C1")
        bot.cycle()
        sagemaker.set("bert", "Failed", "Failed", reason="AlgorithmError: CUDA out of memory")
        sagemaker.faults.append(BAD_DETAIL)  # DescribeTrainingJob answers without TrainingJobStatus
        bot.cycle()
        (alert,) = slack.posts("C1")
        assert "running → *failed*" in text_of(alert) and "CUDA" not in text_of(alert)
        assert polls(bot, "ml", "ok") == 2 and ":large_green_circle: ok" in text_of(bot.command("queues"))
        bot.cycle()  # the cursor moved: the failure is not announced again
        assert len(slack.posts("C1")) == 1 and slack.posts("COPS") == []
    finally:
        bot.close()


def test_a_poll_that_breaks_in_the_commit_is_a_counted_failure(tmp_path: Path, slack: FakeSlack) -> None:
    modzy = ModzySim().start()
    bot = modzy_bot(tmp_path, slack, modzy)
    try:
        modzy.add("ocr")
        with bot.runtime.db.write() as session:  # the store refuses the snapshot (a full disk, say)
            session.execute(
                text("CREATE TRIGGER refuse BEFORE INSERT ON jobsnapshot BEGIN SELECT RAISE(ABORT, 'disk I/O'); END")
            )
        for _ in range(3):
            bot.cycle()  # nothing escapes to the scheduler
        assert polls(bot, "inference", "failed") == 3 and polls(bot, "inference", "error") == 0
        (outage,) = slack.posts("COPS")
        assert "inference has failed 3 polls in a row: internal error: IntegrityError" in outage["text"], outage["text"]
        assert "failing (3 polls)" in text_of(bot.command("queues"))
    finally:
        bot.close()
        modzy.stop()


class BuggyAdapter:
    """A real adapter with a bug bolted on: `list_jobs` or `get_job` raises KeyError."""

    provider: ClassVar[str] = "sagemaker"

    def __init__(self, inner: JobSource, *, in_list: bool = False, in_detail: bool = False) -> None:
        self.inner, self.in_list, self.in_detail = inner, in_list, in_detail

    @property
    def config(self) -> QueueConfig:
        return self.inner.config

    def list_jobs(self, *, since: datetime | None, live: Sequence[Job]) -> list[Job]:
        if self.in_list:
            raise KeyError("TrainingJobSummaries")
        return self.inner.list_jobs(since=since, live=live)

    def get_job(self, job_id: str) -> Job | None:
        if self.in_detail:
            raise KeyError("TrainingJobStatus")
        return self.inner.get_job(job_id)

    def close(self) -> None:
        self.inner.close()


def buggy_bot(tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim) -> tuple[Bot, BuggyAdapter]:
    queue = SageMakerQueue(
        name="ml",
        region="us-east-1",
        endpoint_url=sagemaker.url,
        access_key_env="TEST_AWS_KEY",
        secret_key_env="TEST_AWS_SECRET",
    )
    buggy = BuggyAdapter(SageMakerSource(queue, env=AWS_ENV))
    config = queue_config(sagemaker, '[bot]\nfailure_threshold = 2\nops_channel = "COPS"')
    return Bot(tmp_path, slack, config, env=AWS_ENV, sources={"ml": buggy}), buggy


def test_an_adapter_bug_in_the_detail_call_does_not_hold_back_alerts(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    bot, buggy = buggy_bot(tmp_path, slack, sagemaker)
    try:
        sagemaker.add("bert", status="InProgress", secondary="Training")
        bot.command("subscribe ml", channel="C1")
        bot.cycle()
        buggy.in_detail = True
        sagemaker.set("bert", "Failed", "Failed", reason="AlgorithmError: CUDA out of memory")
        bot.cycle()
        (alert,) = slack.posts("C1")
        assert "running → *failed*" in text_of(alert) and "CUDA" not in text_of(alert)
        assert polls(bot, "ml", "ok") == 2 and slack.posts("COPS") == []
    finally:
        bot.close()


def test_an_adapter_bug_in_the_listing_is_a_counted_failure(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim
) -> None:
    bot, buggy = buggy_bot(tmp_path, slack, sagemaker)
    try:
        bot.cycle()
        buggy.in_list = True
        bot.cycle()
        assert slack.posts("COPS") == []  # one failure is below failure_threshold (2)
        bot.cycle()
        (outage,) = slack.posts("COPS")
        assert "ml has failed 2 polls in a row: internal error: KeyError: 'TrainingJobSummaries'" in outage["text"]
        assert polls(bot, "ml", "failed") == 2 and "failing (2 polls)" in text_of(bot.command("queues"))
    finally:
        bot.close()
