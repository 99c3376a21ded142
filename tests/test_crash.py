"""Kill -9 the real worker process again and again while jobs move: no alert lost, none twice.

The worker runs as `python -m bot worker` against the fake Slack and a simulated Modzy tenant
in this process. It is SIGKILLed at random moments, and also from inside the fake Slack right
after a post was stored and before the answer reaches the worker (the window between Slack
accepting a message and the local commit). A job moves on only once its previous alert is in
Slack, so every transition is one the worker must observe: each job's alerts must be exactly
its transitions, in order, each once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

import pytest
from sqlmodel import select

from bot.core.config import load_config
from bot.features.access import Actor
from bot.features.channel_settings import ChannelSettings
from bot.sim.modzy import InferenceJob, ModzySim
from bot.sim.slack import FakeSlack
from bot.store.db import Database
from bot.store.tables import OutboxItem, QueueState
from tests.conftest import TEAM, TOKEN

ROOT = Path(__file__).resolve().parent.parent
QUEUES = 17  # 10 jobs a channel: Slack's 1 post/s per channel paces each channel's share
JOBS = int(os.environ.get("CRASH_JOBS", 170))  # x 3 transitions each = 510 alerts
CHAIN = ("SUBMITTED", "IN_PROGRESS")  # then COMPLETED or ERROR
MIN_KILLS = 20  # kills at random moments; more come right after a post
MAX_KILLS = 30  # then the last worker finishes the run undisturbed
KILL_AFTER_POST = 0.02
DEADLINE_S = int(os.environ.get("CRASH_DEADLINE", 420))


class Worker:
    """The bot's worker as a child process that can be killed and started again."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log: IO[str] = log.open("a")
        self.proc: subprocess.Popen[str] | None = None
        self.lock = threading.Lock()
        self.kills = 0
        self.started_at = 0.0

    def start(self) -> None:
        with self.lock:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "worker"],
                env=self.env,
                cwd=ROOT,
                stdout=self.log,
                stderr=self.log,
                text=True,
            )
            self.started_at = time.monotonic()

    def kill(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                self.kills += 1

    def stop(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=30)
        self.log.close()


def parse(text: str) -> tuple[str, str]:
    """`<ident> (<model>) in <queue>: <STATUS>` -> (ident, STATUS)."""
    head, status = text.rsplit(": ", 1)
    return head.split(" ", 1)[0], status


@pytest.mark.long
def test_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    modzy = ModzySim().start()
    slack = FakeSlack(tokens={TOKEN: TEAM}).start()
    worker: Worker | None = None
    try:
        config = tmp_path / "jobwatch.toml"
        config.write_text(
            "[bot]\ndigest_threshold = 1000\n"
            + "".join(
                f'[[queues]]\nname = "q{i}"\nprovider = "modzy"\nendpoint_url = "{modzy.url}"\nmodel = "m{i}"\n'
                for i in range(QUEUES)
            )
        )
        url = f"sqlite:///{tmp_path / 'bot.db'}"
        db = Database(url)
        db.create_all()
        changes = ChannelSettings(config=load_config(config), db=db)
        for i in range(QUEUES):
            changes.subscribe(Actor(TEAM, f"C{i}", "U1"), f"q{i}", statuses=(), match=None)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "JOBWATCH_", "DATABASE_"))}
        env = {
            **clean,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": url,
            "JOBWATCH_CONFIG": str(config),
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_API_URL": slack.api_url,
            "MODZY_API_KEY": modzy.api_key,
            "JOBWATCH_POLL_INTERVAL": "5",
            "JOBWATCH_LEASE_TTL": "2",
        }
        worker = Worker(env, tmp_path / "worker.log")
        w = worker

        posted: list[tuple[str, str]] = []  # (job, native status) as each alert was first posted

        def kill_after_post(message: dict[str, Any]) -> None:
            ident, status = parse(message["text"])  # parents are later edited in place: keep the original
            if " " not in status:  # a status alert; a slow/stuck flag (bot/pipeline/usual.py) is another event
                posted.append((ident, status))
            # Slack has stored the message; the worker dies before it hears back.
            if rng.random() < KILL_AFTER_POST and w.kills < MAX_KILLS and time.monotonic() - w.started_at > 1:
                w.kill()

        slack.on_post = kill_after_post
        worker.start()

        # The baseline (nothing announced), then every job appears after it.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with db.read() as session:
                done = [s for s in session.exec(select(QueueState)).all() if s.baseline_at is not None]
            if len(done) == QUEUES:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("no baseline within 60 s:\n" + (tmp_path / "worker.log").read_text()[-3000:])

        jobs: dict[str, InferenceJob] = {}
        final: dict[str, str] = {}
        for n in range(JOBS):
            job = modzy.add(f"m{n % QUEUES}")
            jobs[job.ident] = job
            final[job.ident] = "ERROR" if n % 7 == 0 else "COMPLETED"
        expected = {ident: [*CHAIN, final[ident]] for ident in jobs}

        next_kill = time.monotonic() + rng.uniform(1, 6)
        deadline = time.monotonic() + DEADLINE_S
        while True:
            seen: dict[str, list[str]] = defaultdict(list)
            for ident, status in list(posted):
                seen[ident].append(status)
            finished = all(seen.get(i) == chain for i, chain in expected.items())
            if finished and worker.kills >= MIN_KILLS:
                break
            if time.monotonic() > deadline:
                wrong = {i: (seen.get(i), c) for i, c in expected.items() if seen.get(i) != c}
                sample = list(wrong.items())[:5]
                raise AssertionError(f"not done in {DEADLINE_S} s; kills={worker.kills}; {len(wrong)} off: {sample}")
            for ident, statuses in seen.items():
                chain = expected[ident]
                if statuses and statuses[-1] == jobs[ident].status and len(statuses) < len(chain):
                    modzy.set(ident, chain[len(statuses)], failed=10 if chain[len(statuses)] == "ERROR" else 0)
            if time.monotonic() >= next_kill and worker.kills < MIN_KILLS:
                worker.kill()
                next_kill = time.monotonic() + rng.uniform(1, 6)
            if worker.proc is None or worker.proc.poll() is not None:
                worker.start()
            time.sleep(0.1)

        # Let the last worker settle whatever is still owed, then look at everything.
        slack.on_post = None
        if worker.proc is None or worker.proc.poll() is not None:
            worker.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with db.read() as session:
                open_rows = session.exec(select(OutboxItem).where(OutboxItem.state != "sent")).all()
            if not open_rows:
                break
            time.sleep(0.5)
        assert not open_rows, [(r.id, r.state, r.last_error) for r in open_rows]

        seen = defaultdict(list)
        for ident, status in posted:
            seen[ident].append(status)
        lost = {i: c for i, c in expected.items() if any(s not in seen[i] for s in c)}
        duplicated = {i: s for i, s in seen.items() if len(s) != len(set(s))}
        assert not lost and not duplicated
        assert seen == expected  # in order, each once
        ids = slack.alert_ids()
        assert len(ids) == len(set(ids)) == JOBS * 3
        assert worker.kills >= MIN_KILLS
    finally:
        if worker is not None:
            worker.kill()
            worker.stop()
        slack.stop()
        modzy.stop()
