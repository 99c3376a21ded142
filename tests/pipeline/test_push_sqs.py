"""The SQS consumer on moto's SQS and EventBridge (a rule with the documented pattern -> a standard
queue with a dead-letter queue): documented-shape events reach their channel through the poll's own
path; duplicates, reordering, malformed and foreign messages, failed deletes and a consumer killed
between commit and delete change nothing they should not. moto emits no SageMaker or Batch events:
the tests put them on the bus themselves, as the services would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.pipeline.push import EventConsumer
from bot.sim.batch import BatchSim
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.snapshots import stored_jobs
from providers import JobStatus
from tests.conftest import AWS_ENV
from tests.harness import Bot, text_of

REGION = "us-east-1"
PATTERN = {
    "source": ["aws.sagemaker", "aws.batch"],
    "detail-type": ["SageMaker Training Job State Change", "Batch Service Job State Change"],
}
ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/"


@dataclass
class Aws:
    """moto's SQS and EventBridge, set up as docs/push.md says."""

    sqs: Any
    events: Any
    url: str
    dlq: str

    def put(self, event: dict[str, Any]) -> None:
        """Put an event on the default bus as the service would; the rule sends it to the queue."""
        answer = self.events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0

    def send(self, body: str) -> None:
        """A message straight on the queue (what no rule would send)."""
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body)

    def depth(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        dlq = sqs.create_queue(QueueName="jobwatch-events-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
        url = sqs.create_queue(
            QueueName="jobwatch-events", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "0"}
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="jobwatch-job-state", EventPattern=json.dumps(PATTERN))
        events.put_targets(Rule="jobwatch-job-state", Targets=[{"Id": "jobwatch", "Arn": arn}])
        yield Aws(sqs, events, url, dlq)


AWS_KEYS = 'access_key_env = "TEST_AWS_KEY"\nsecret_key_env = "TEST_AWS_SECRET"'


@pytest.fixture
def bot(
    tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, batch: BatchSim, aws: Aws
) -> Iterator[Bot]:
    config = f"""
[[queues]]
name = "ml"
provider = "sagemaker"
region = "{REGION}"
endpoint_url = "{sagemaker.url}"
events_queue_url = "{aws.url}"
{AWS_KEYS}

[[queues]]
name = "gpu"
provider = "batch"
region = "{REGION}"
job_queue = "gpu-spot"
endpoint_url = "{batch.url}"
events_queue_url = "{aws.url}"
{AWS_KEYS}
"""
    b = Bot(tmp_path, slack, config, env=AWS_ENV, database_url=database_url)
    for queue in ("ml", "gpu"):
        assert "Subscribed" in text_of(b.command(f"subscribe {queue}", channel="C1"))
    b.cycle()  # both baselines
    yield b
    b.close()


def consumer(bot: Bot) -> EventConsumer:
    (found,) = bot.runtime.worker.consumers  # both queues name one SQS queue: one consumer routes to both
    found.wait_s = 1
    return found


def counted(bot: Bot, name: str, **labels: str) -> float:
    value = bot.runtime.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def drain(bot: Bot) -> int:
    deleted = consumer(bot).receive_once()
    bot.runtime.worker.deliver()
    return deleted


def test_sagemaker_and_batch_events_through_eventbridge_and_sqs(
    bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim, batch: BatchSim, aws: Aws
) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    job = batch.add("resnet", "RUNNABLE")
    bot.cycle()  # both first seen after the baseline: announced by the poll (Batch sends no event for a submission)
    before = len(slack.posts())
    sagemaker.set("bert", "Failed", "Failed", reason="AlgorithmError: CUDA out of memory")
    aws.put(sagemaker.event("bert"))
    batch.set(job.job_id, "RUNNING")
    aws.put(batch.event(job.job_id))
    assert drain(bot) == 2 and aws.depth() == 0
    new = slack.posts()[before:]
    assert len(new) == 2
    failed = next(m for m in new if "bert" in m["text"])
    assert "running → *failed*" in text_of(failed) and "CUDA out of memory" in text_of(failed)
    assert any("queued → *running*" in text_of(m) and "resnet" in m["text"] for m in new)
    assert counted(bot, "jobwatch_push_events_total", queue="ml", outcome="applied") == 1
    assert counted(bot, "jobwatch_push_events_total", queue="gpu", outcome="applied") == 1
    assert counted(bot, "jobwatch_push_messages_total", channel="sqs:jobwatch-events", outcome="received") == 2
    assert counted(bot, "jobwatch_push_lag_seconds_count", queue="ml") == 1
    bot.cycle()  # the poll finds what the events told: nothing new
    assert len(slack.posts()) == before + 2


def test_duplicates_and_reordering_give_one_alert_per_change(
    bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim, aws: Aws
) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Starting")
    bot.cycle()
    start = len(slack.posts())
    sagemaker.set("bert", "InProgress", "Training")
    training = sagemaker.event("bert")
    sagemaker.set("bert", "Completed", "Completed")
    done = sagemaker.event("bert")
    for event in (done, done, training, done):  # SageMaker repeats itself; the queue keeps no order
        aws.put(event)
    while aws.depth():
        drain(bot)
    (alert,) = slack.posts()[start:]
    assert "queued → *succeeded*" in text_of(alert)
    assert counted(bot, "jobwatch_push_events_total", queue="ml", outcome="applied") == 1
    assert counted(bot, "jobwatch_push_events_total", queue="ml", outcome="duplicate") == 2
    assert counted(bot, "jobwatch_push_events_total", queue="ml", outcome="stale") == 1


def test_malformed_and_foreign_messages_go_to_the_dead_letter_queue(bot: Bot, aws: Aws) -> None:
    aws.send("not json")
    aws.send(json.dumps({"Records": [{"s3": {}}]}))  # JSON, but no EventBridge event
    foreign = {
        "version": "0",
        "id": "1",
        "detail-type": "SageMaker Training Job State Change",
        "source": "aws.sagemaker",
        "time": "2026-12-04T10:00:00Z",
        "region": "eu-west-1",  # no queue watches that Region
        "resources": [],
        "detail": {"TrainingJobName": "x", "TrainingJobArn": "arn:x", "TrainingJobStatus": "Completed"},
    }
    aws.send(json.dumps(foreign))
    for _ in range(4):  # maxReceiveCount 3: the fourth receive finds them in the dead-letter queue
        assert drain(bot) == 0
    assert aws.depth() == 0 and aws.depth(aws.dlq) == 3
    channel = "sqs:jobwatch-events"
    assert counted(bot, "jobwatch_push_messages_total", channel=channel, outcome="malformed") == 6
    assert counted(bot, "jobwatch_push_messages_total", channel=channel, outcome="foreign") == 3


def test_a_consumer_killed_between_commit_and_delete(
    bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim, aws: Aws
) -> None:
    sagemaker.add("bert", status="InProgress", secondary="Training")
    bot.cycle()
    start = len(slack.posts())
    sagemaker.set("bert", "Completed", "Completed")
    aws.put(sagemaker.event("bert"))
    found = consumer(bot)
    (message,) = aws.sqs.receive_message(QueueUrl=aws.url, WaitTimeSeconds=1)["Messages"]
    assert found.handle(message)  # committed; the process dies before DeleteMessageBatch
    bot.runtime.worker.deliver()
    assert drain(bot) == 1  # redelivered: applied again, changes nothing, deleted this time
    assert aws.depth() == 0
    assert len(slack.posts()) == start + 1
    assert counted(bot, "jobwatch_push_events_total", queue="ml", outcome="duplicate") == 1


def test_a_failed_delete_is_counted_and_the_message_comes_back(bot: Bot, aws: Aws) -> None:
    found = consumer(bot)
    assert found.delete([{"ReceiptHandle": "not-a-receipt-handle"}]) == 0
    channel = "sqs:jobwatch-events"
    assert counted(bot, "jobwatch_push_messages_total", channel=channel, outcome="delete_failed") == 1


def test_push_and_poll_racing_on_one_job(bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim, aws: Aws) -> None:
    """The worker's event thread and its polls run at once on jobs that keep changing."""
    names = [f"job-{i}" for i in range(6)]
    for name in names:
        sagemaker.add(name, status="InProgress", secondary="Starting")
    bot.cycle()
    start = len(slack.posts())
    worker = bot.runtime.worker
    consumer(bot)
    worker.start_events()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            worker.poll("ml")

    poller = threading.Thread(target=poll)
    poller.start()
    for step in (("InProgress", "Training"), ("Completed", "Completed")):
        for name in names:
            sagemaker.set(name, *step)
            aws.put(sagemaker.event(name))
    deadline = time.monotonic() + 20
    while aws.depth() and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    poller.join()
    bot.cycle()
    bot.settle()
    jobs = stored_jobs(bot.runtime.db, "ml", [ARN + n for n in names])
    assert {j.status for j in jobs.values()} == {JobStatus.SUCCEEDED}
    alert_ids = slack.alert_ids()[start:]
    assert len(alert_ids) == len(set(alert_ids))
    # each job: at most one alert per change (queued -> running, running -> succeeded, or both at once)
    for name in names:
        about = [m for m in slack.posts()[start:] if name in m["text"]]
        assert 1 <= len(about) <= 2


def test_a_change_reaches_its_channel_within_two_seconds_while_polls_wait_five_minutes(
    bot: Bot, slack: FakeSlack, sagemaker: SageMakerSim, aws: Aws
) -> None:
    """The worker as it runs: its scheduler (polls every 5 min, delivery every second) and its event
    thread long-polling SQS (20 s waits)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    worker = bot.runtime.worker
    assert bot.runtime.config.interval(bot.runtime.config.queues[0], bot.settings) == 300
    sagemaker.add("bert", status="InProgress", secondary="Training")
    bot.cycle()
    start = len(slack.posts())
    scheduler = BackgroundScheduler(timezone="UTC")
    worker.schedule(scheduler)
    scheduler.start()
    try:
        time.sleep(1.5)  # the first polls of the schedule run now; the next in 5 minutes
        sagemaker.set("bert", "Completed", "Completed")
        began = time.monotonic()
        aws.put(sagemaker.event("bert"))
        while len(slack.posts()) == start and time.monotonic() - began < 10:
            time.sleep(0.02)
        took = time.monotonic() - began
    finally:
        scheduler.shutdown(wait=True)
    (alert,) = slack.posts()[start:]
    assert "running → *succeeded*" in text_of(alert)
    assert took < 2.0, took
