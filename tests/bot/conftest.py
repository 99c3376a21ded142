"""A bot on one simulated SageMaker queue `ml`, with a clock the test can move forward."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from tests.conftest import AWS_ENV
from tests.harness import Bot, queue_config
from tests.harness import MovableClock as Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ml(tmp_path: Path, database_url: str, slack: FakeSlack, sagemaker: SageMakerSim, clock: Clock) -> Iterator[Bot]:
    b = Bot(tmp_path, slack, queue_config(sagemaker), env=AWS_ENV, clock=clock, database_url=database_url)
    yield b
    b.close()
