"""Sharded polling with real `jobwatch worker` processes on PostgreSQL: three workers share 60 queues
on the SageMaker simulator; each queue is listed by exactly one worker per cycle; `kill -9` of one
worker (the one that also holds the poller lease, so delivery moves too) has its queues listed by
the others within 10 s; no alert is lost or posted twice across the kill.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlmodel import select

from bot.core.config import load_config
from bot.features.access import Actor
from bot.features.channel_settings import ChannelSettings
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.db import Database
from bot.store.tables import OutboxItem, QueueState
from tests.conftest import TEAM, TOKEN
from tests.test_cli import ROOT, free_port, process_env

QUEUES = [f"q{i:02d}" for i in range(60)]
CHANNELS = 30  # two queues a channel: Slack's 1 post/s per channel paces each channel's share
INTERVAL = 2.0  # seconds between two polls of one queue
POLLED = re.compile(r"poll_done queue=(q\d\d)")


class Worker:
    """One `jobwatch worker` child process, its log in a file read while it runs."""

    def __init__(self, env: dict[str, str], log: Path, *, isolated: bool = False) -> None:
        self.path = log
        self.log = log.open("w")
        # Isolated: in a PID namespace of its own, as on another host: the others cannot see that
        # its process is gone, so only the TTL frees its queues. unshare's --kill-child passes our
        # SIGKILL on to the worker.
        wrap = ["unshare", "--pid", "--fork", "--kill-child"] if isolated else []
        self.port = free_port()  # its ops HTTP: /metrics
        self.proc = subprocess.Popen(
            [*wrap, sys.executable, "-m", "bot", "worker"],
            env=process_env({**env, "PORT": str(self.port)}),
            cwd=ROOT,
            stdout=self.log,
            stderr=self.log,
            text=True,
        )

    def offset(self) -> int:
        return self.path.stat().st_size

    def polled(self, since: int = 0) -> list[str]:
        """The queues this worker listed (completed polls) after byte `since` of its log."""
        with self.path.open(encoding="utf-8", errors="replace") as f:
            f.seek(since)
            return POLLED.findall(f.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def sagemaker_queues(path: Path, endpoint: str, queues: Sequence[str]) -> Path:
    """A queues file of SageMaker queues on the simulator, each listing the jobs named `<queue>-…`;
    no digest folds a burst."""
    path.write_text(
        "[bot]\ndigest_threshold = 1000\n"
        + "".join(
            f'[[queues]]\nname = "{q}"\nprovider = "sagemaker"\nregion = "us-east-1"\n'
            f'endpoint_url = "{endpoint}"\naccess_key_env = "K"\nsecret_key_env = "S"\n'
            f'name_contains = "{q}-"\n'
            for q in queues
        )
    )
    return path


def sharded_env(database_url: str, config: Path, slack: FakeSlack, interval: float) -> dict[str, str]:
    """What a sharded worker of these tests runs with: TTLs of 3 s, text logs."""
    return {
        "DATABASE_URL": database_url,
        "JOBWATCH_CONFIG": str(config),
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": slack.api_url,
        "JOBWATCH_POLL_INTERVAL": str(interval),
        "JOBWATCH_SHARDED": "true",
        "JOBWATCH_SHARD_TTL": "3",
        "JOBWATCH_LEASE_TTL": "3",
        "JOBWATCH_LOG_FORMAT": "text",
        "K": "k",
        "S": "s",
    }


def baselined(db: Database, queues: Sequence[str]) -> bool:
    """Whether every one of `queues` has had its baseline."""
    with db.read() as session:
        states = session.exec(select(QueueState)).all()
    return sum(1 for s in states if s.baseline_at is not None) == len(queues)


def window(workers: list[Worker], seconds: float) -> list[set[str]]:
    """The queues each worker listed during the next `seconds`."""
    marks = [w.offset() for w in workers]
    time.sleep(seconds)
    return [set(w.polled(m)) for w, m in zip(workers, marks, strict=True)]


def assert_partition(listed: list[set[str]]) -> None:
    counts = Counter(q for queues in listed for q in queues)
    assert sorted(counts) == QUEUES, f"not listed: {sorted(set(QUEUES) - set(counts))}"
    twice = sorted(q for q, n in counts.items() if n > 1)
    assert not twice, f"listed by two workers in one window: {twice}"


def wait_until(what: str, check: object, seconds: float, workers: Sequence[Worker]) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        for w in workers:
            assert w.proc.poll() is None or w.proc.returncode == -signal.SIGKILL, w.path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{what}: not within {seconds:g} s\n" + workers[0].path.read_text()[-3000:]
        time.sleep(0.1)


def alerted(slack: FakeSlack, job: str) -> int:
    """Posts (with an alert id) about one job: its first alert, then its thread replies."""
    return sum(
        1
        for m in slack.posts()
        if (m.get("metadata") or {}).get("event_payload", {}).get("alert_id") and job in str(m.get("text", ""))
    )


ISOLATION = [
    False,
    pytest.param(
        True,
        marks=pytest.mark.skipif(
            os.geteuid() != 0 or shutil.which("unshare") is None, reason="a PID namespace needs root and unshare"
        ),
    ),
]


@pytest.mark.long
@pytest.mark.parametrize("isolated", ISOLATION, ids=["one-machine", "own-pid-namespaces"])
def test_three_workers_share_sixty_queues_and_take_over_a_killed_one(
    database_url: str, tmp_path: Path, isolated: bool
) -> None:
    """One machine: the survivors see the victim's process is gone and take over at once. Own PID
    namespaces (as on several hosts): they wait for its TTL (3 s here)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("sharded polling is PostgreSQL only; SQLite keeps the single lease")
    sagemaker = SageMakerSim().start()
    slack = FakeSlack(tokens={TOKEN: TEAM}).start()
    workers: list[Worker] = []
    try:
        config = sagemaker_queues(tmp_path / "jobwatch.toml", sagemaker.url, QUEUES)
        db = Database(database_url)
        db.upgrade()
        changes = ChannelSettings(config=load_config(config), db=db)
        for i, queue in enumerate(QUEUES):
            changes.subscribe(Actor(TEAM, f"C{i % CHANNELS}", "U1"), queue, statuses=(), match=None)
        env = sharded_env(database_url, config, slack, INTERVAL)
        workers = [Worker(env, tmp_path / f"worker{n}.log", isolated=isolated) for n in range(3)]

        wait_until("every queue's baseline", lambda: baselined(db, QUEUES), 90, workers)
        time.sleep(3 * 3)  # the shares settle: 20 each once all three are members
        listed = window(workers, 2.5 * INTERVAL)
        assert_partition(listed)
        assert sorted(len(q) for q in listed) == [20, 20, 20]

        # Jobs start everywhere, then the worker holding the poller lease (delivery) is killed.
        for queue in QUEUES:
            sagemaker.add(f"{queue}-a")
        wait_until("some first alerts", lambda: sum(alerted(slack, f"{q}-a") for q in QUEUES) >= 10, 30, workers)
        holders = [w for w in workers if "lease_acquired" in w.path.read_text(errors="replace")]
        assert len(holders) == 1, "one worker took the poller lease, and kept it"
        victim = holders[0]
        survivors = [w for w in workers if w is not victim]
        orphaned = listed[workers.index(victim)]
        marks = [w.offset() for w in survivors]
        os.kill(victim.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.proc.wait()
        for queue in QUEUES:
            sagemaker.add(f"{queue}-b")

        taken: dict[str, float] = {}
        deadline = killed_at + 30
        while len(taken) < len(orphaned) and time.monotonic() < deadline:
            for w, m in zip(survivors, marks, strict=True):
                for queue in set(w.polled(m)) & orphaned:
                    taken.setdefault(queue, time.monotonic() - killed_at)
            time.sleep(0.05)
        assert set(taken) == orphaned, f"never listed again: {sorted(orphaned - set(taken))}"
        worst = max(taken.values())
        sys.stderr.write(
            f"takeover: {len(orphaned)} queues listed again after {min(taken.values()):.1f}-{worst:.1f} s\n"
        )
        assert worst < 10, f"the killed worker's queues were listed again only after {worst:.1f} s"

        # Each job moves on once its first alert is in Slack, so every transition is observed.
        def first_alerts_in() -> bool:
            return all(alerted(slack, f"{q}-a") >= 1 for q in QUEUES)

        wait_until("every first alert", first_alerts_in, 60, survivors)
        for queue in QUEUES:
            sagemaker.set(f"{queue}-a", "Completed", "Completed")

        def all_posted() -> bool:
            return all(alerted(slack, f"{q}-a") >= 2 and alerted(slack, f"{q}-b") >= 1 for q in QUEUES)

        wait_until("every alert", all_posted, 90, survivors)
        listed = window(survivors, 2.5 * INTERVAL)
        assert_partition(listed)
        assert sorted(len(q) for q in listed) == [30, 30]
        time.sleep(2)  # anything posted twice would show now

        ids = slack.alert_ids()
        assert len(ids) == len(set(ids)), f"posted twice: {[i for i, n in Counter(ids).items() if n > 1]}"
        assert len(ids) == 3 * len(QUEUES)
        assert all(alerted(slack, f"{q}-a") == 2 and alerted(slack, f"{q}-b") == 1 for q in QUEUES)

        def settled() -> bool:  # the parents' edits to their final status come last
            with db.read() as session:
                return not session.exec(select(OutboxItem).where(OutboxItem.state != "sent")).all()

        wait_until("every outbox row sent", settled, 60, survivors)
        db.dispose()
    finally:
        for w in workers:
            w.stop()
        slack.stop()
        sagemaker.stop()


def test_sharded_polling_is_refused_on_sqlite(tmp_path: Path) -> None:
    """SQLite keeps the single lease: asking for shards there stops the worker at start-up, saying why."""
    config = tmp_path / "jobwatch.toml"
    config.write_text(
        '[[queues]]\nname = "ml"\nprovider = "sagemaker"\nregion = "us-east-1"\n'
        'endpoint_url = "http://127.0.0.1:9"\naccess_key_env = "K"\nsecret_key_env = "S"\n'
    )
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "JOBWATCH_CONFIG": str(config),
        "JOBWATCH_SHARDED": "true",
        "K": "k",
        "S": "s",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "worker"],
        env=process_env(env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "JOBWATCH_SHARDED needs PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr
