"""Sharded polling and delivery bench: polls per cycle and CPU per worker for 1, 2 and 3 `jobwatch
worker` processes over 300 SageMaker queues (the simulator in this process), then posts per second
and each worker's share of them over 300 channels (the fake Slack in this process), on PostgreSQL;
with `--renewals`, the cost of one share renewal (`ShardKeeper.renew`) at 300 and 3,000 scopes instead.

Run from the repository root with a PostgreSQL the bench may create schemas in:
`BENCH_PG_URL=postgresql+psycopg://… python bench/shards.py` (or JOBWATCH_TEST_PG_URL, as the tests).
`--renewals`: a fresh schema per scope count, three keepers in this process (owners named like
processes of this machine, as on one host) settled to a third each, then RENEWALS rounds one second
apart on their clock in which each renews; only the first one's renewals are measured: this process's
CPU and the PostgreSQL backends' CPU (/proc/<pid>/stat of the client backends) per renewal, and its
wall time.

For each worker count: a fresh schema, the workers started, every queue's baseline, 2 s for the
shares to settle, then a window of CYCLES poll intervals in which each worker's completed polls
(its log's `poll_done` lines) and its CPU time (/proc/<pid>/stat utime + stime) are counted.
Delivery: a fresh schema, the workers started and their delivery buckets shared out (each worker's
`jobwatch_delivery_buckets_held`), then POSTS notices for each of CHANNELS channels written at
once; timed until every row is sent, each worker's share read from its
`jobwatch_slack_api_calls_total{method="chat.postMessage"}`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, create_engine, make_url, text
from sqlmodel import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core.clock import utcnow  # noqa: E402
from bot.core.outbox import OutboxRow  # noqa: E402
from bot.sim.sagemaker import SageMakerSim  # noqa: E402
from bot.sim.slack import FakeSlack  # noqa: E402
from bot.store import outbox  # noqa: E402
from bot.store.db import Database  # noqa: E402
from bot.store.lease import process_owner  # noqa: E402
from bot.store.shards import ShardKeeper  # noqa: E402
from bot.store.tables import OutboxItem, QueueState  # noqa: E402

QUEUES = 300
INTERVAL = 10.0
CYCLES = 3
CHANNELS = 300
POSTS = 5  # notices a channel: Slack's pace (1 a second, a burst of 2) makes a channel's share take 3 s
POLLED = re.compile(r"poll_done queue=(q\d+)")
POSTED = re.compile(r'^jobwatch_slack_api_calls_total\{method="chat.postMessage"\} ([0-9.e+]+)$', re.M)
HELD = re.compile(r"^jobwatch_delivery_buckets_held ([0-9.e+]+)$", re.M)
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (proc(5): fields 14 and 15)


def metric(port: int, pattern: re.Pattern[str]) -> float:
    """A value of one worker's /metrics (0 while it does not answer or has none)."""
    try:
        found = pattern.search(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
    except httpx.HTTPError:
        return 0.0
    return float(found.group(1)) if found else 0.0


@contextmanager
def schema(pg_url: str) -> Iterator[str]:
    """A database URL on a fresh schema, dropped at the end."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield make_url(pg_url).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@contextmanager
def started(
    workers: int, env: dict[str, str], tmp: Path, name: str
) -> Iterator[list[tuple[subprocess.Popen[bytes], Path, int]]]:
    """`workers` sharded `jobwatch worker` processes: (process, log, ops port) each; stopped at the end."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "JOBWATCH_", "AWS_", "DATABASE_"))}
    procs: list[tuple[subprocess.Popen[bytes], Path, int]] = []
    try:
        for n in range(workers):
            log, port = tmp / f"{name}{workers}-{n}.log", free_port()
            full = {
                **clean,
                "PYTHONPATH": str(ROOT),
                "JOBWATCH_SHARDED": "true",
                "JOBWATCH_LOG_FORMAT": "text",
                "PORT": str(port),
                "K": "k",
                "S": "s",
                **env,
            }
            out = log.open("w")
            proc = subprocess.Popen([sys.executable, "-m", "bot", "worker"], env=full, cwd=ROOT, stdout=out, stderr=out)
            procs.append((proc, log, port))
        yield procs
    finally:
        for proc, _, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _, _ in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def queues_file(path: Path, endpoint: str, queues: int) -> Path:
    path.write_text(
        "".join(
            f'[[queues]]\nname = "q{i:03d}"\nprovider = "sagemaker"\nregion = "us-east-1"\n'
            f'endpoint_url = "{endpoint}"\naccess_key_env = "K"\nsecret_key_env = "S"\n'
            f'name_contains = "q{i:03d}-"\n'
            for i in range(queues)
        )
    )
    return path


def run(workers: int, pg_url: str, tmp: Path) -> list[tuple[int, float]]:
    """(polls, CPU seconds) per worker over CYCLES intervals."""
    with schema(pg_url) as url:
        return _run(workers, url, tmp)


def _run(workers: int, url: str, tmp: Path) -> list[tuple[int, float]]:
    sim = SageMakerSim().start()
    try:
        for i in range(QUEUES):
            sim.add(f"q{i:03d}-job")
        config = queues_file(tmp / f"jobwatch{workers}.toml", sim.url, QUEUES)
        db = Database(url)
        db.upgrade()
        env = {
            "DATABASE_URL": url,
            "JOBWATCH_CONFIG": str(config),
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
            "JOBWATCH_POLL_INTERVAL": str(INTERVAL),
        }
        with started(workers, env, tmp, "w") as procs:
            deadline = time.monotonic() + 180
            while True:
                with db.read() as session:
                    done = sum(1 for s in session.exec(select(QueueState)).all() if s.baseline_at is not None)
                if done == QUEUES:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{workers} workers: {done} of {QUEUES} baselines in 180 s")
                time.sleep(0.5)
            time.sleep(2 + INTERVAL)
            marks = [(log.stat().st_size, cpu_seconds(p.pid)) for p, log, _ in procs]
            time.sleep(CYCLES * INTERVAL)
            rows = []
            for (proc, log, _), (offset, cpu) in zip(procs, marks, strict=True):
                with log.open(errors="replace") as f:
                    f.seek(offset)
                    polls = len(POLLED.findall(f.read()))
                rows.append((polls, cpu_seconds(proc.pid) - cpu))
        db.dispose()
        return rows
    finally:
        sim.stop()


def deliver(workers: int, pg_url: str, tmp: Path) -> tuple[float, list[float]]:
    """(posts per second of all workers, each worker's posts) for CHANNELS x POSTS notices."""
    with schema(pg_url) as url:
        sim = SageMakerSim().start()
        slack = FakeSlack(tokens={"xoxb-bench": "T0001"}).start()
        try:
            config = queues_file(tmp / f"deliver{workers}.toml", sim.url, 1)
            db = Database(url)
            db.upgrade()
            env = {
                "DATABASE_URL": url,
                "JOBWATCH_CONFIG": str(config),
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_API_URL": slack.api_url,
            }
            with started(workers, env, tmp, "d") as procs:
                deadline = time.monotonic() + 120
                while True:
                    held = [metric(port, HELD) for _, _, port in procs]
                    if sum(held) == 64 and min(held) >= 64 // workers - 1:
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{workers} workers: buckets not shared out in 120 s ({held})")
                    time.sleep(0.5)
                now = utcnow()
                rows = [
                    OutboxRow.notice(
                        f"n{c}-{i}", f"notice {i}", team_id="T0001", channel_id=f"C{c:04d}", queue="q000", now=now
                    )
                    for c in range(CHANNELS)
                    for i in range(POSTS)
                ]
                started_at = time.monotonic()
                with db.write() as session:
                    outbox.insert(session, rows)
                while True:
                    with db.read() as session:
                        sent = len(session.exec(select(OutboxItem.id).where(OutboxItem.state == "sent")).all())
                    if sent == len(rows):
                        break
                    if time.monotonic() - started_at > 300:
                        raise SystemExit(f"{workers} workers: {sent} of {len(rows)} posts in 300 s")
                    time.sleep(0.2)
                seconds = time.monotonic() - started_at
                shares = [metric(port, POSTED) for _, _, port in procs]
            db.dispose()
            return len(rows) / seconds, shares
        finally:
            slack.stop()
            sim.stop()


RENEWAL_SCOPES = (300, 3000)
RENEWALS = 40


class StepClock:
    """The keepers' time: moved on by hand, so TTLs never run out while the bench measures."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def backends_cpu(admin: Engine) -> float:
    """CPU seconds so far of the database's client backends (not this admin connection's)."""
    with admin.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalars()
        return sum(cpu_seconds(pid) for pid in pids if Path(f"/proc/{pid}").exists())


def renewals(scopes: int, pg_url: str) -> tuple[float, float, float]:
    """(client CPU ms, database CPU ms, wall ms) per renewal of one of three workers holding a third
    of `scopes` each."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    db = Database(url)
    try:
        db.upgrade()
        names = [f"q{i:05d}" for i in range(scopes)]
        clock = StepClock()
        owners = [process_owner(), process_owner(os.getppid()), process_owner(1)]  # alive, as on one host
        keepers = [ShardKeeper(db, ttl=timedelta(seconds=10), clock=clock, owner=o) for o in owners]
        for _ in range(3):
            for keeper in keepers:
                keeper.renew(names)
        assert sum(len(k.held()) for k in keepers) == scopes
        me, others = keepers[0], keepers[1:]
        cpu = server = wall = 0.0
        for _ in range(RENEWALS):  # every worker renews (their rows stay theirs); only `me` is measured
            clock.now += timedelta(seconds=1)
            for keeper in others:
                keeper.renew(names)
            server -= backends_cpu(admin)
            cpu -= time.process_time()
            wall -= time.perf_counter()
            me.renew(names)
            wall += time.perf_counter()
            cpu += time.process_time()
            server += backends_cpu(admin)
            assert abs(len(me.held()) - scopes / 3) < 1  # its third, renewed
        return cpu * 1000 / RENEWALS, server * 1000 / RENEWALS, wall * 1000 / RENEWALS
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    pg_url = os.environ.get("BENCH_PG_URL") or os.environ.get("JOBWATCH_TEST_PG_URL")
    if not pg_url:
        raise SystemExit("set BENCH_PG_URL (or JOBWATCH_TEST_PG_URL) to a PostgreSQL database")
    if "--renewals" in sys.argv[1:]:
        print(f"one renewal of one of 3 workers, mean of {RENEWALS}")
        print("| scopes | client CPU ms | database CPU ms | wall ms |")
        print("|---|---|---|---|")
        for scopes in RENEWAL_SCOPES:
            client, database, wall = renewals(scopes, pg_url)
            print(f"| {scopes:,} | {client:.1f} | {database:.1f} | {wall:.1f} |", flush=True)
        return
    parts = sys.argv[1:] or ["polling", "delivery"]  # `python bench/shards.py delivery`: that part only
    with tempfile.TemporaryDirectory() as tmp:
        if "polling" in parts:
            print(f"{QUEUES} queues, {INTERVAL:g} s interval, {CYCLES} cycles measured")
            print("| workers | polls per cycle, each worker | all workers | CPU s per cycle, each worker |")
            print("|---|---|---|---|")
            for workers in (1, 2, 3):
                rows = run(workers, pg_url, Path(tmp))
                polls = [p / CYCLES for p, _ in rows]
                cpu = [c / CYCLES for _, c in rows]
                print(
                    f"| {workers} | {', '.join(f'{p:.0f}' for p in polls)} | {sum(polls):.0f} | "
                    f"{', '.join(f'{c:.2f}' for c in cpu)} |",
                    flush=True,
                )
        if "delivery" in parts:
            print(f"{CHANNELS} channels, {POSTS} notices each, written at once")
            print("| workers | posts per second, all workers | posts, each worker |")
            print("|---|---|---|")
            for workers in (1, 2, 3):
                rate, shares = deliver(workers, pg_url, Path(tmp))
                print(f"| {workers} | {rate:.0f} | {', '.join(f'{n:.0f}' for n in shares)} |", flush=True)


if __name__ == "__main__":
    main()
