"""Shared fixtures: the fake Slack server, a fresh SQLite store, the SageMaker simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.db import Database
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack

TOKEN = "xoxb-test"
TEAM = "T0001"
SECRET = "test-signing-secret"
AWS_ENV = {"TEST_AWS_KEY": "AKIATEST", "TEST_AWS_SECRET": "test-secret"}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack(tokens={TOKEN: TEAM, "xoxb-other": "T0002"}).start()
    yield server
    server.stop()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'jobwatch.db'}")
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def sagemaker() -> Iterator[SageMakerSim]:
    sim = SageMakerSim().start()
    yield sim
    sim.stop()
