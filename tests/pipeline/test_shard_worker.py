"""The worker with sharded polling: poll jobs only for the queues it holds, re-balanced as workers join;
and with sharded delivery: posts only for the channels of its buckets, with or without the lease."""

from __future__ import annotations

from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from bot.core.clock import utcnow
from bot.core.outbox import OutboxRow
from bot.pipeline.buckets import bucket_of
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store import outbox
from tests.conftest import AWS_ENV, TEAM
from tests.harness import Bot

QUEUES = [f"q{i}" for i in range(6)]


def config(endpoint: str) -> str:
    return "".join(
        f'[[queues]]\nname = "{q}"\nprovider = "sagemaker"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        f'access_key_env = "TEST_AWS_KEY"\nsecret_key_env = "TEST_AWS_SECRET"\nname_contains = "{q}-"\n'
        for q in QUEUES
    )


def polls(scheduler: BackgroundScheduler) -> set[str]:
    return {job.id.removeprefix("poll:") for job in scheduler.get_jobs() if job.id.startswith("poll:")}


def test_poll_jobs_follow_the_queues_held(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("sharded polling is PostgreSQL only")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Bot(tmp_path / "a", slack, config(sagemaker.url), env=AWS_ENV, database_url=database_url, jobwatch_sharded=True)
    b = Bot(tmp_path / "b", slack, config(sagemaker.url), env=AWS_ENV, database_url=database_url, jobwatch_sharded=True)
    sa, sb = BackgroundScheduler(timezone="UTC"), BackgroundScheduler(timezone="UTC")  # never started
    try:
        a.runtime.worker.schedule(sa)
        assert polls(sa) == set(QUEUES)  # alone: every queue
        b.runtime.worker.schedule(sb)  # joins: a still holds everything, b's share waits
        assert polls(sb) == set()
        a.runtime.worker.renew()  # a gives up what is beyond its share...
        b.runtime.worker.renew()  # ...and b takes it
        assert len(polls(sa)) == len(polls(sb)) == 3
        assert polls(sa) | polls(sb) == set(QUEUES)
        queue = sorted(polls(sb))[0]
        assert a.runtime.worker.poll_fence(queue) is None  # a no longer writes b's queues
        fence = b.runtime.worker.poll_fence(queue)
        assert fence is not None and fence.token == 2  # taken over: a new token
        b.runtime.worker.close()  # a clean stop hands b's queues back at once
        a.runtime.worker.renew()
        assert polls(sa) == set(QUEUES)
    finally:
        a.close()
        b.http.close()
        b.runtime.db.dispose()


def test_each_worker_drains_the_channels_of_its_buckets_with_or_without_the_lease(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("sharded delivery is PostgreSQL only")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Bot(tmp_path / "a", slack, config(sagemaker.url), env=AWS_ENV, database_url=database_url, jobwatch_sharded=True)
    b = Bot(tmp_path / "b", slack, config(sagemaker.url), env=AWS_ENV, database_url=database_url, jobwatch_sharded=True)
    wa, wb = a.runtime.worker, b.runtime.worker
    try:
        for _ in range(2):
            wa.renew()
            wb.renew()
        assert wa.lease.fence() is not None and wb.lease.fence() is None  # a alone runs the side jobs
        assert wa.buckets is not None and wb.buckets is not None
        assert len(wa.buckets.held()) == len(wb.buckets.held()) == 32
        channels = [f"C{n:02d}" for n in range(20)]
        now = utcnow()
        with a.runtime.db.write() as session:
            outbox.insert(
                session,
                [OutboxRow.notice(c, c, team_id=TEAM, channel_id=c, queue=QUEUES[0], now=now) for c in channels],
            )
        wb.dispatch()  # b holds no lease, yet drains its buckets' channels
        wb.deliverer.drainers.wait()
        mine = {c for c in channels if bucket_of(c) in wb.buckets.held()}
        assert mine and {p["channel"] for p in slack.posts()} == mine
        wa.dispatch()
        wa.deliverer.drainers.wait()
        assert sorted(slack.alert_ids()) == channels
        assert a.runtime.metrics.registry.get_sample_value("jobwatch_delivery_buckets_held") == 32
    finally:
        a.close()
        b.close()
