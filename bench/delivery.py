"""Delivery: throughput to N channels against Slack's ~1 post/s per channel, and whether one slow
channel or one long backlog holds the others (head-of-line blocking).

Runs the real Deliverer (outbox in SQLite, claim/post/settle, per-channel pacing, each channel on
its own drainer) against the local fake Slack, which enforces 1 post/s per channel with a burst
of 3 and answers 429 + Retry-After beyond it. Prints markdown tables.

Throughput: every channel has its alerts waiting at the start; rounds of `run_once`.
Head-of-line (`--slow`): one channel that Slack answers in 4 s a post (12 alerts queued), one
with a backlog of 500 (paced at 1/s), and N-2 healthy channels to which alerts are committed at
random moments for 30 s; the dispatcher ticks every second as the worker's scheduler runs it.
Measured: commit -> post latency of the healthy channels' alerts, and what the others did.

    python bench/delivery.py [--channels 50] [--per-channel 20] [--slow --channels 20 [--backlog 500]]
"""

from __future__ import annotations

import argparse
import math
import random
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


SLOW_POST = 4.0  # seconds Slack takes to answer each post of the slow channel
SLOW_ROWS = 12
BACKLOG = 500
OFFER = 30.0  # seconds during which alerts are committed to the healthy channels
EVERY = 3.0  # seconds between two alerts of one healthy channel, on average (the issue's: about 6)
HEALTHY_P95 = 2.0  # seconds: a healthy channel's alert, whatever the slow and the backlogged ones do


def alert(channel: str, key: str, now: datetime) -> OutboxItem:
    job = Job(queue="bench", id=key, name=f"train-{key}", status=JobStatus.SUCCEEDED, native_status="Completed")
    return OutboxItem(
        alert_id=key,
        team_id="T0001",
        channel_id=channel,
        queue="bench",
        job_id=key,
        old_status="running",
        new_status="succeeded",
        payload=job.model_dump_json(),
        next_attempt_at=now,
        created_at=now,
    )


def head_of_line(channels: int, *, backlog_rows: int = BACKLOG, seed: int = 7) -> dict[str, Any]:
    """The head-of-line scenario (module docstring); latencies of the healthy channels' alerts."""
    posted: dict[str, float] = {}
    per_channel: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()

    def on_post(message: dict[str, Any]) -> None:
        with lock:
            per_channel[message["channel"]].append(time.monotonic())
            posted[str(message["metadata"]["event_payload"]["alert_id"])] = time.monotonic()

    slow, backlog = "C0000", "C0001"
    healthy = [f"C{c:04d}" for c in range(2, channels)]
    slack = FakeSlack(tokens={"xoxb-bench": "T0001"}, rate=LIMIT, burst=3.0, on_post=on_post).start()
    slack.slow[slow] = SLOW_POST
    rng = random.Random(seed)
    committed: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.create_all()
        now = datetime.now(UTC)
        with db.write() as session:
            session.add_all([alert(slow, f"slow-{n}", now) for n in range(SLOW_ROWS)])
            session.add_all([alert(backlog, f"backlog-{n}", now) for n in range(backlog_rows)])
        client = slack_client(Settings(slack_bot_token="xoxb-bench", slack_api_url=slack.api_url))
        deliverer = Deliverer(db, lambda _team: client, digest_threshold=10**6)
        tick = getattr(deliverer, "dispatch", deliverer.run_once)  # a checkout before drainers: the old round
        done = threading.Event()

        def scheduler() -> None:  # the worker's 1 s job; a round still running skips the next (max_instances=1)
            while not done.is_set():
                started = time.monotonic()
                tick()
                done.wait(max(0.0, 1.0 - (time.monotonic() - started)))

        ticker = threading.Thread(target=scheduler, daemon=True)
        ticker.start()
        start = time.monotonic()
        plan = sorted((rng.uniform(0.5, OFFER), channel) for channel in healthy for _ in range(int(OFFER / EVERY)))
        for n, (at, channel) in enumerate(plan):
            time.sleep(max(0.0, start + at - time.monotonic()))
            key = f"news-{n}"
            with db.write() as session:
                session.add(alert(channel, key, datetime.now(UTC)))
            committed[key] = time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(k not in posted for k in committed):
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        with lock:
            backlog_stamps = list(per_channel[backlog])
            slow_posts = len(per_channel[slow])
            latencies = [posted[k] - t for k, t in committed.items() if k in posted]
        done.set()
        if hasattr(deliverer, "close"):
            deliverer.close()
        ticker.join(timeout=5)
        db.dispose()
    slack.stop()
    backlog_rate = (
        (len(backlog_stamps) - 1) / (backlog_stamps[-1] - backlog_stamps[0]) if len(backlog_stamps) > 1 else 0
    )
    return {
        "healthy_channels": len(healthy),
        "offered": len(committed),
        "delivered": len(latencies),
        "elapsed": elapsed,
        "p50": statistics.median(latencies) if latencies else math.inf,
        "p95": sorted(latencies)[max(0, math.ceil(0.95 * len(latencies)) - 1)] if latencies else math.inf,
        "throughput": len(latencies) / OFFER,
        "backlog_rows": backlog_rows,
        "backlog_posts": len(backlog_stamps),
        "backlog_rate": backlog_rate,
        "slow_posts": slow_posts,
        "rejected": slack.rejected,
    }


def head_of_line_table(r: dict[str, Any]) -> tuple[list[tuple[str, str, str, bool | None]], bool]:
    """(metric, measured, target, pass) rows of a head-of-line run, and whether every bound held."""
    all_in = r["delivered"] == r["offered"]
    rows: list[tuple[str, str, str, bool | None]] = [
        (
            f"healthy channels ({r['healthy_channels']}): alerts delivered, alerts/s",
            f"{r['delivered']} of {r['offered']}, {r['throughput']:.1f}/s",
            "all",
            all_in,
        ),
        (
            "healthy channels: commit -> post latency p50 / p95",
            f"{r['p50']:.2f} s / {r['p95']:.2f} s",
            f"p95 <= {HEALTHY_P95:g} s",
            all_in and r["p95"] <= HEALTHY_P95,
        ),
    ]
    if r["backlog_rows"]:
        rows.append(
            (
                f"backlog channel ({r['backlog_rows']} queued): posts, rate",
                f"{r['backlog_posts']}, {r['backlog_rate'] / LIMIT:.2f} of the limit",
                ">= 0.9",
                r["backlog_rate"] >= 0.9 * LIMIT,
            )
        )
    rows += [
        (f"slow channel ({SLOW_POST:g} s a post, {SLOW_ROWS} queued): posts", str(r["slow_posts"]), "", None),
        ("429s provoked", str(r["rejected"]), "0", r["rejected"] == 0),
    ]
    return rows, all(ok is not False for *_, ok in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--per-channel", type=int, default=20)
    parser.add_argument("--slow", action="store_true", help="the head-of-line scenario instead of throughput")
    parser.add_argument("--backlog", type=int, default=BACKLOG, help="(--slow) rows queued for the backlogged channel")
    args = parser.parse_args()
    if args.slow:
        table, passed = head_of_line_table(head_of_line(args.channels, backlog_rows=args.backlog))
        print(
            f"Delivery, head of line: {args.channels} channels, one slow, one with {args.backlog} queued,"
            " the others healthy"
        )
        print()
        print("| metric | measured | target | result |")
        print("|---|---|---|---|")
        for metric, measured, target, ok in table:
            print(f"| {metric} | {measured} | {target} | {'info' if ok is None else 'pass' if ok else '**FAIL**'} |")
        print()
        print("PASS" if passed else "FAIL")
        return 0 if passed else 1
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
