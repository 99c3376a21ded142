"""The worker with sharded polling: poll jobs only for the queues it holds, re-balanced as workers join;
and with sharded delivery: posts only for the channels of its buckets, with or without the lease."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from bot.core.clock import Clock, utcnow
from bot.core.outbox import OutboxRow
from bot.pipeline.buckets import bucket_of
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store import outbox
from tests.conftest import AWS_ENV, TEAM
from tests.harness import Bot, MovableClock

QUEUES = [f"q{i}" for i in range(6)]


def config(endpoint: str) -> str:
    return "".join(
        f'[[queues]]\nname = "{q}"\nprovider = "sagemaker"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        f'access_key_env = "TEST_AWS_KEY"\nsecret_key_env = "TEST_AWS_SECRET"\nname_contains = "{q}-"\n'
        for q in QUEUES
    )


def polls(scheduler: BackgroundScheduler) -> set[str]:
    return {job.id.removeprefix("poll:") for job in scheduler.get_jobs() if job.id.startswith("poll:")}


def two_workers(
    tmp_path: Path, slack: FakeSlack, text: str, env: dict[str, str], database_url: str, clock: Clock = utcnow
) -> tuple[Bot, Bot]:
    """Bots `a` (on `clock`) and `b` with sharded polling on one PostgreSQL store; skips on SQLite."""
    if not database_url.startswith("postgresql"):
        pytest.skip("sharded polling is PostgreSQL only")
    bots = []
    for name, its_clock in (("a", clock), ("b", utcnow)):
        (tmp_path / name).mkdir()
        bots.append(
            Bot(
                tmp_path / name, slack, text, env=env, database_url=database_url, jobwatch_sharded=True, clock=its_clock
            )
        )
    return bots[0], bots[1]


def test_poll_jobs_follow_the_queues_held(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim, database_url: str
) -> None:
    a, b = two_workers(tmp_path, slack, config(sagemaker.url), AWS_ENV, database_url)
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


# Three accounts of two queues each: key TEAM_A in us-east-1, TEAM_B in us-east-1, TEAM_A in eu-west-1.
ACCOUNT_OF = {"a0": "A", "a1": "A", "b0": "B", "b1": "B", "e0": "E", "e1": "E"}
ACCOUNT_ENV = {"TEAM_A_KEY": "AKIAA", "TEAM_A_SECRET": "a", "TEAM_B_KEY": "AKIAB", "TEAM_B_SECRET": "b"}


def account_config(endpoint: str) -> str:
    keys = {"A": ("us-east-1", "TEAM_A"), "B": ("us-east-1", "TEAM_B"), "E": ("eu-west-1", "TEAM_A")}
    text = '[bot]\nshard_by = "account"\n'
    for q, account in ACCOUNT_OF.items():
        region, team = keys[account]
        text += (
            f'[[queues]]\nname = "{q}"\nprovider = "sagemaker"\nregion = "{region}"\nendpoint_url = "{endpoint}"\n'
            f'access_key_env = "{team}_KEY"\nsecret_key_env = "{team}_SECRET"\nname_contains = "{q}-"\n'
        )
    return text


def by_account(queues: set[str]) -> set[str]:
    """The accounts of `queues`, checking that each account's queues are all there or none."""
    accounts = {ACCOUNT_OF[q] for q in queues}
    assert queues == {q for q, a in ACCOUNT_OF.items() if a in accounts}, f"an account split: {sorted(queues)}"
    return accounts


def test_shard_by_account_keeps_an_account_s_queues_on_one_worker(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim, database_url: str
) -> None:
    clock = MovableClock()  # worker a's time: moved past the TTL, b looks dead to it
    a, b = two_workers(tmp_path, slack, account_config(sagemaker.url), ACCOUNT_ENV, database_url, clock)
    wa, wb = a.runtime.worker, b.runtime.worker
    sa, sb = BackgroundScheduler(timezone="UTC"), BackgroundScheduler(timezone="UTC")  # never started
    try:
        assert len(set(wa.scopes.values())) == 3
        wa.schedule(sa)
        assert polls(sa) == set(ACCOUNT_OF)  # alone: every account
        wb.schedule(sb)
        assert polls(sb) == set()
        for worker in (wa, wb, wa, wb):  # a gives one account up, b takes it
            worker.renew()
            held_a, held_b = by_account(polls(sa)), by_account(polls(sb))
            assert not held_a & held_b
        assert len(held_a) == 2 and len(held_b) == 1 and held_a | held_b == {"A", "B", "E"}
        pair = [q for q in ACCOUNT_OF if ACCOUNT_OF[q] in held_b]
        fences = [wb.poll_fence(q) for q in pair]
        assert fences[0] is not None and fences[0] == fences[1]  # one scope, one fence for both queues
        assert all(wa.poll_fence(q) is None for q in pair)
        assert set(wb.held_queues()) == set(pair)
        # b stops renewing (a kill -9 on another host): a takes its whole account after the TTL
        clock.offset += wa.shards.ttl if wa.shards is not None else timedelta()
        wa.renew()
        assert polls(sa) == set(ACCOUNT_OF)
        taken = [wa.poll_fence(q) for q in pair]
        assert taken[0] is not None and taken[0] == taken[1] and taken[0].token == fences[0].token + 1
        wb.renew()  # b comes back: its rows have a new owner; it holds nothing until a gives a share up
        assert polls(sb) == set()
    finally:
        a.close()
        b.http.close()
        b.runtime.db.dispose()


def test_a_worker_beyond_the_scopes_warns_once(
    tmp_path: Path, slack: FakeSlack, sagemaker: SageMakerSim, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two workers, one account: the second polls nothing, and says so once (not at every renewal)."""
    one_account = account_config(sagemaker.url).split('[[queues]]\nname = "b0"')[0]  # a0 and a1 only
    a, b = two_workers(tmp_path, slack, one_account, ACCOUNT_ENV, database_url)
    try:
        a.runtime.worker.renew()
        with caplog.at_level(logging.WARNING, logger="bot.worker"):
            for _ in range(3):
                b.runtime.worker.renew()
        assert b.runtime.worker.held_queues() == []
        (warning,) = [r.getMessage() for r in caplog.records if "shards_fewer_than_workers" in r.getMessage()]
        assert "shard_by=account scopes=1 workers=2: 1 worker(s) poll nothing" in warning
    finally:
        a.close()
        b.close()
