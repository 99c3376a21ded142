"""Tag reads (bot/pipeline/tags.py) against the SageMaker simulator made slow: a few at a time, within the
adapter's deadline; what the deadline cuts off stays unread (no failure counted) for a later cycle."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bot.pipeline.tags import TAG_FAILURES, TAG_WORKERS, TAGS_READ, read_tags, with_tag_owners
from bot.sim.http import Request, Response
from bot.sim.sagemaker import SageMakerSim
from providers.sagemaker import SageMakerQueue, SageMakerSource
from tests.conftest import AWS_ENV

DELAY = 0.2  # seconds each ListTags answer takes


@pytest.fixture
def sim() -> Iterator[SageMakerSim]:
    s = SageMakerSim().start()
    for n in range(20):
        s.add(f"job-{n:02d}", status="InProgress", secondary="Training", tags={"owner": f"user{n}"})
    yield s
    s.stop()


class InFlight:
    """Wraps the simulator's handler: ListTags answers DELAY late, and the most at once is counted."""

    def __init__(self, sim: SageMakerSim) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()
        self.handler = sim._server.handler
        sim._server.handler = self.handle

    def handle(self, req: Request) -> Response:
        if not req.headers.get("x-amz-target", "").endswith(".ListTags"):
            return self.handler(req)
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(DELAY)
        with self.lock:
            self.now -= 1
        return self.handler(req)


def source(sim: SageMakerSim, deadline_s: float) -> SageMakerSource:
    config = SageMakerQueue(
        name="ml",
        region="us-east-1",
        endpoint_url=sim.url,
        access_key_env="TEST_AWS_KEY",
        secret_key_env="TEST_AWS_SECRET",
    )
    return SageMakerSource(config, env=AWS_ENV, deadline_s=deadline_s)


def test_reads_go_a_few_at_a_time(sim: SageMakerSim) -> None:
    src = source(sim, deadline_s=30)
    jobs = src.list_jobs(since=None, live=[])
    flight = InFlight(sim)
    started = time.monotonic()
    answers = read_tags(src, jobs)
    took = time.monotonic() - started
    assert {tags["owner"] for tags in answers.values() if tags} == {f"user{n}" for n in range(20)}
    assert 1 < flight.most <= TAG_WORKERS
    assert took < 20 * DELAY / 2  # not one after the other


def test_the_deadline_leaves_the_rest_unread_without_counting_a_failure(sim: SageMakerSim) -> None:
    src = source(sim, deadline_s=DELAY * 1.5)
    jobs = src.list_jobs(since=None, live=[])
    InFlight(sim)
    started = time.monotonic()
    out = with_tag_owners(src, "owner", jobs, {}, baseline=True)
    assert time.monotonic() - started < DELAY * 4  # the cycle does not wait for the reads left over
    read = [j for j in out if j.extra.get(TAGS_READ)]
    assert 0 < len(read) < len(jobs)
    assert all(j.extra.get("owner") == f"user{int(j.name[4:])}" for j in read)
    assert not any(TAG_FAILURES in j.extra for j in out)  # cut off is not failed: read on a later cycle
