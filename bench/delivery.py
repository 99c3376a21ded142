"""Delivery throughput: N channels with alerts waiting, against Slack's ~1 post/s per channel.

Runs the real Deliverer (outbox in SQLite, claim/post/settle, per-channel pacing, channels
in parallel) against the local fake Slack, which enforces 1 post/s per channel with a burst
of 3 and answers 429 + Retry-After beyond it. Prints one markdown table.

    python bench/delivery.py [--channels 50] [--per-channel 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import func, select

from bot.core.config import Settings
from bot.pipeline.deliver import Deliverer
from bot.runtime import slack_client
from bot.sim.slack import FakeSlack
from bot.store.db import Database
from bot.store.tables import OutboxItem
from providers import Job, JobStatus

LIMIT = 1.0  # Slack's chat.postMessage allowance per channel, posts per second


def fill(db: Database, channels: int, per_channel: int) -> None:
    now = datetime.now(UTC)
    with db.write() as session:
        for c in range(channels):
            for n in range(per_channel):
                job = Job(
                    queue="bench",
                    id=f"job-{c}-{n}",
                    name=f"train-{c}-{n}",
                    status=JobStatus.SUCCEEDED,
                    native_status="Completed",
                    updated_at=now,
                )
                session.add(
                    OutboxItem(
                        alert_id=f"{c}-{n}",
                        team_id="T0001",
                        channel_id=f"C{c:04d}",
                        queue="bench",
                        job_id=job.id,
                        old_status="running",
                        new_status="succeeded",
                        payload=job.model_dump_json(),
                        next_attempt_at=now,
                        created_at=now,
                    )
                )


def run(channels: int, per_channel: int) -> dict[str, Any]:
    stamps: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()

    def on_post(message: dict[str, Any]) -> None:
        with lock:
            stamps[message["channel"]].append(time.monotonic())

    slack = FakeSlack(tokens={"xoxb-bench": "T0001"}, rate=LIMIT, burst=3.0, on_post=on_post).start()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.create_all()
        fill(db, channels, per_channel)
        client = slack_client(Settings(slack_bot_token="xoxb-bench", slack_api_url=slack.api_url))
        deliverer = Deliverer(db, lambda _team: client, digest_threshold=10**6)
        start = time.monotonic()
        rounds = 0
        while True:
            rounds += 1
            deliverer.run_once()
            with db.read() as session:
                open_rows = session.exec(select(func.count()).where(OutboxItem.state != "sent")).one()
            if not open_rows or time.monotonic() - start > 600:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - start
        with db.read() as session:
            dead = session.exec(select(func.count()).where(OutboxItem.state == "dead")).one()
        db.dispose()
    slack.stop()
    rates = [(len(s) - 1) / (s[-1] - s[0]) for s in stamps.values() if len(s) > 1 and s[-1] > s[0]]
    return {
        "posts": sum(len(s) for s in stamps.values()),
        "elapsed": elapsed,
        "rounds": rounds,
        "rate_median": statistics.median(rates),
        "rate_min": min(rates),
        "rejected": slack.rejected,
        "dead": dead,
        "unsent": open_rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--per-channel", type=int, default=20)
    args = parser.parse_args()
    r = run(args.channels, args.per_channel)
    ratio_med, ratio_min = r["rate_median"] / LIMIT, r["rate_min"] / LIMIT
    ok = ratio_min >= 0.9 and r["rejected"] == 0 and r["dead"] == 0 and r["unsent"] == 0
    print(f"Delivery: {args.channels} channels x {args.per_channel} alerts, fake Slack at {LIMIT:g} post/s/channel")
    print()
    print("| metric | measured | target |")
    print("|---|---|---|")
    print(f"| posts delivered | {r['posts']} of {args.channels * args.per_channel} | all |")
    print(f"| wall time | {r['elapsed']:.1f} s | |")
    print(f"| aggregate throughput | {r['posts'] / r['elapsed']:.1f} posts/s | |")
    print(f"| per-channel rate, median / slowest | {ratio_med:.2f} / {ratio_min:.2f} of the limit | >= 0.9 |")
    print(f"| 429s provoked | {r['rejected']} | 0 |")
    print(f"| dead rows | {r['dead']} | 0 |")
    print()
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
