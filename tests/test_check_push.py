"""`jobwatch check` says, per queue, whether its changes are pushed, when the last one was applied, and
what is wrong with the set-up (an SQS queue of events it cannot read, or without a dead-letter queue)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from bot.check import check
from bot.core.config import Settings
from bot.sim.modzy import ModzySim
from bot.sim.sagemaker import SageMakerSim
from bot.store.db import Database
from bot.store.tables import QueueState
from tests.conftest import AWS_ENV

pytestmark = pytest.mark.sqlite_only

KEYS = 'access_key_env = "TEST_AWS_KEY"\nsecret_key_env = "TEST_AWS_SECRET"'


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """Two SQS queues of events: one with a dead-letter queue, one without."""
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MODZY_WEBHOOK_SECRET", "s3cret")
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        dlq = client.create_queue(QueueName="events-dlq")["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})
        good = client.create_queue(QueueName="events", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        bare = client.create_queue(QueueName="events-bare")["QueueUrl"]
        yield good, bare


def settings(tmp_path: Path, config: str, database_url: str) -> Settings:
    path = tmp_path / "jobwatch.toml"
    path.write_text(config)
    return Settings(slack_bot_token="xoxb-1", slack_signing_secret="s", jobwatch_config=path, database_url=database_url)


def test_check_says_how_each_queue_learns_of_changes(
    tmp_path: Path,
    database_url: str,
    sqs: tuple[str, str],
    sagemaker: SageMakerSim,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, _ = sqs
    modzy = ModzySim().start()
    try:
        config = f"""
[[queues]]
name = "pushed"
provider = "sagemaker"
region = "us-east-1"
endpoint_url = "{sagemaker.url}"
events_queue_url = "{good}"
{KEYS}

[[queues]]
name = "polled"
provider = "sagemaker"
region = "us-east-1"
endpoint_url = "{sagemaker.url}"
{KEYS}

[[queues]]
name = "inference"
provider = "modzy"
endpoint_url = "{modzy.url}"
api_key_env = "MODZY_KEY"
webhook = true
webhook_secret_header = "X-Webhook-Secret"
webhook_secret_env = "MODZY_WEBHOOK_SECRET"
"""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MODZY_KEY", modzy.api_key)
            assert check(settings(tmp_path, config, database_url)) == 0
            out = capsys.readouterr().out
            assert f"push: SQS {good} (0 waiting), no event applied yet; reconciled every 300 s" in out
            assert "push: not set up, polled every 60 s; its events can be read (events_queue_url)" in out
            assert "push: webhook /webhooks/modzy/inference (secret header X-Webhook-Secret)" in out
            db = Database(database_url)
            db.upgrade()
            with db.write() as session:
                session.add(QueueState(queue="pushed", last_event_at=sagemaker.clock()))
            db.dispose()
            assert check(settings(tmp_path, config, database_url)) == 0
            assert "last event applied 20" in capsys.readouterr().out
    finally:
        modzy.stop()


def test_check_refuses_an_events_queue_without_a_dead_letter_queue_or_unreadable(
    tmp_path: Path,
    database_url: str,
    sqs: tuple[str, str],
    sagemaker: SageMakerSim,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, bare = sqs
    table = (
        f'[[queues]]\nname = "pushed"\nprovider = "sagemaker"\nregion = "us-east-1"\nendpoint_url = "{sagemaker.url}"\n'
    )
    config = f'{table}events_queue_url = "{bare}"\n{KEYS}\n'
    assert check(settings(tmp_path, config, database_url)) == 1
    assert "its SQS queue of events has no redrive policy: add a dead-letter queue" in capsys.readouterr().err
    missing = bare.rsplit("/", 1)[0] + "/nowhere"
    config = f'{table}events_queue_url = "{missing}"\n{KEYS}\n'
    assert check(settings(tmp_path, config, database_url)) == 1
    assert "cannot read its SQS queue of events" in capsys.readouterr().err
