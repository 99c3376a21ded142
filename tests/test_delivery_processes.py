"""Sharded delivery with real `jobwatch worker` processes on PostgreSQL: three workers share the 64
delivery buckets, so the alerts of 30 channels are posted by all three, each exactly once; `kill -9`
of one of them in the middle of the drain has its channels drained by the other two within seconds
(its buckets taken over with new fences), and what it had in flight is recovered, not posted twice.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from bot.core.config import load_config
from bot.features.access import Actor
from bot.features.channel_settings import ChannelSettings
from bot.pipeline.buckets import PREFIX, bucket_of
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.db import Database
from bot.store.tables import Lease, OutboxItem
from tests import test_shard_processes as shards
from tests.conftest import TEAM, TOKEN
from tests.test_shard_processes import wait_until

QUEUES = [f"q{i}" for i in range(6)]
CHANNELS = [f"C{n:02d}" for n in range(30)]  # five a queue
JOBS = 8  # a queue: eight alerts a channel, about 7 s of one channel's pace (1 post/s)
POSTS = re.compile(r'^jobwatch_slack_api_calls_total\{method="chat.postMessage"\} ([0-9.e+]+)$', re.M)
HELD = re.compile(r"^jobwatch_delivery_buckets_held ([0-9.e+]+)$", re.M)


class Worker(shards.Worker):
    """One `jobwatch worker` child process, its log in a file, and its metrics."""

    def metric(self, pattern: re.Pattern[str]) -> float:
        """A value of this worker's /metrics (0 while it does not answer or has none)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return 0.0
        found = pattern.search(text)
        return float(found.group(1)) if found else 0.0


def posts_by_channel(slack: FakeSlack) -> Counter[str]:
    return Counter(str(m.get("channel")) for m in slack.posts() if (m.get("metadata") or {}).get("event_payload"))


def calls_by_channel(slack: FakeSlack) -> Counter[str]:
    """chat.postMessage calls as they arrive (a post in flight counts before Slack answers it)."""
    return Counter(str(p.get("channel")) for m, p in list(slack.calls) if m == "chat.postMessage")


@pytest.mark.long
def test_three_workers_share_the_channels_and_take_over_a_killed_one_s(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("sharded delivery is PostgreSQL only; SQLite keeps the single lease")
    sagemaker = SageMakerSim().start()
    slack = FakeSlack(tokens={TOKEN: TEAM}).start()
    workers: list[Worker] = []
    try:
        config = shards.sagemaker_queues(tmp_path / "jobwatch.toml", sagemaker.url, QUEUES)
        db = Database(database_url)
        db.upgrade()
        changes = ChannelSettings(config=load_config(config), db=db)
        for i, channel in enumerate(CHANNELS):
            changes.subscribe(Actor(TEAM, channel, "U1"), QUEUES[i % len(QUEUES)], statuses=(), match=None)
        env = shards.sharded_env(database_url, config, slack, 1)
        workers = [Worker(env, tmp_path / f"worker{n}.log") for n in range(3)]

        def balanced() -> bool:
            held = [w.metric(HELD) for w in workers]
            return sum(held) == 64 and min(held) >= 20

        wait_until("every queue's baseline", lambda: shards.baselined(db, QUEUES), 60, workers)
        wait_until("the buckets shared by three", balanced, 20, workers)

        for channel in CHANNELS:  # a post takes 0.8 s: a kill finds most draining channels with one in flight
            slack.slow[channel] = 0.8
        for queue in QUEUES:
            for j in range(JOBS):
                sagemaker.add(f"{queue}-{j}")
        total = len(CHANNELS) * JOBS
        wait_until("a third of the alerts", lambda: sum(posts_by_channel(slack).values()) >= total // 3, 30, workers)
        posts = [w.metric(POSTS) for w in workers]
        assert all(n > 0 for n in posts), f"posts by worker: {posts}"  # every worker posts its channels' share

        victim = max(workers, key=lambda w: w.metric(POSTS))
        survivors = [w for w in workers if w is not victim]
        with db.read() as session:
            buckets = {
                row.name.removeprefix(PREFIX)
                for row in session.exec(select(Lease).where(col(Lease.name).startswith(PREFIX))).all()
                if f":{victim.proc.pid}:" in row.owner
            }
        orphaned = {c for c in CHANNELS if bucket_of(c) in buckets}
        before = calls_by_channel(slack)
        left = {c for c in orphaned if before[c] < JOBS}
        assert left, "the victim had channels still draining"
        os.kill(victim.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.proc.wait()
        with db.read() as session:
            inflight = len(session.exec(select(OutboxItem).where(OutboxItem.state == "sending")).all())

        taken: dict[str, float] = {}
        while len(taken) < len(left) and time.monotonic() < killed_at + 20:
            now = calls_by_channel(slack)
            for channel in left:
                if now[channel] > before[channel]:
                    taken.setdefault(channel, time.monotonic() - killed_at)
            time.sleep(0.05)
        assert set(taken) == left, f"never drained again: {sorted(left - set(taken))}"
        worst = max(taken.values())
        sys.stderr.write(
            f"takeover: {len(left)} channels drained again after {min(taken.values()):.1f}-{worst:.1f} s;"
            f" {inflight} posts in flight at the kill\n"
        )
        assert worst < 10, f"the killed worker's channels were drained again only after {worst:.1f} s"

        def settled() -> bool:  # a row left in flight is recovered 20 s after its claim, from Slack's history
            with db.read() as session:
                return not session.exec(select(OutboxItem).where(OutboxItem.state != "sent")).all()

        wait_until("every outbox row sent", settled, 60, survivors)
        ids = [(c, a) for c in CHANNELS for a in slack.alert_ids(c)]  # an alert id is one per job change
        assert len(ids) == len(set(ids)), f"posted twice: {[i for i, n in Counter(ids).items() if n > 1]}"
        assert len(ids) == total
        assert posts_by_channel(slack) == Counter({c: JOBS for c in CHANNELS})
        assert sum(w.metric(HELD) for w in survivors) == 64
        db.dispose()
    finally:
        for w in workers:
            w.stop()
        slack.stop()
        sagemaker.stop()
