"""Two OS processes contend for the poller lease on one database: never two holders at once.

Each process loops: renew the lease; while holding it, make fenced writes (Fence.check, then a row
in a log table, in one write transaction); now and then release it, or stall past the TTL and then
try one more write with the stale fence, as a paused zombie would. Read back in commit order, the
log's fences never go down and each fence has one owner: no writes of two holders interleave.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path

import httpx
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.exc import OperationalError

from bot.core.clock import utcnow
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.db import Database
from bot.store.lease import LeaseKeeper, LostLease
from bot.store.tables import Lease
from tests.test_cli import free_port, serve_env, start

LOG = Table(
    "lease_log",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("fence", Integer, nullable=False),
    Column("owner", String, nullable=False),
)
TTL = timedelta(milliseconds=300)


def contend(url: str, start_at: float, seconds: float, seed: int) -> tuple[str, int, int]:
    """One process's run; returns (owner, fenced writes made, stale writes refused)."""
    rng = random.Random(seed)
    db = Database(url)
    keeper = LeaseKeeper(db, ttl=TTL)
    written = refused = 0
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fence = keeper.renew()
        if fence is None:
            time.sleep(rng.uniform(0.0, 0.03))
            continue
        stall = rng.random() < 0.25
        if stall:
            time.sleep(TTL.total_seconds() * 1.5)  # a pause past the TTL: the other may take over
        for _ in range(1 if stall else rng.randint(1, 4)):
            try:
                with db.write() as session:
                    fence.check(session)
                    session.execute(LOG.insert().values(fence=fence.token, owner=keeper.owner))
                written += 1
            except LostLease:
                refused += 1
                break
            time.sleep(rng.uniform(0.0, 0.01))
        if rng.random() < 0.3:
            keeper.release()
    keeper.release()
    db.dispose()
    return keeper.owner, written, refused


def test_two_processes_never_hold_the_lease_together(db: Database) -> None:
    LOG.metadata.create_all(db.engine)
    start_at = time.time() + 3  # both processes start contending together, after their imports
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        runs = [pool.submit(contend, db.url, start_at, 4.0, seed) for seed in (1, 2)]
        results = [r.result(timeout=60) for r in runs]
    with db.read() as session:
        log = [(row.fence, row.owner) for row in session.execute(select(LOG).order_by(LOG.c.id))]
    owners = {owner for owner, _, _ in results}
    assert len(owners) == 2
    assert {owner for _, owner in log} == owners, "both processes held the lease at some point"
    fences = [fence for fence, _ in log]
    assert fences == sorted(fences), "a write with an older fence came after a newer holder's"
    holder: dict[int, str] = {}
    for fence, owner in log:
        assert holder.setdefault(fence, owner) == owner, f"fence {fence} used by two owners"
    assert len(holder) >= 3, "the lease changed hands several times"
    assert sum(written for _, written, _ in results) == len(log)


def lease_row(url: str) -> Lease | None:
    database = Database(url)
    try:
        with database.read() as session:
            return session.get(Lease, "poller")
    finally:
        database.dispose()


def wait_for_lease(url: str, proc: subprocess.Popen[str], *, seconds: float) -> float:
    """Seconds until `proc` holds the poller lease (its pid in the owner); fails after `seconds`."""
    started = time.monotonic()
    while True:
        try:
            lease = lease_row(url)
        except OperationalError:  # the process has not created its tables yet
            lease = None
        if lease is not None and f":{proc.pid}:" in lease.owner and lease.expires_at > utcnow():
            return time.monotonic() - started
        assert proc.poll() is None, f"exited {proc.returncode}: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() - started < seconds, f"no lease after {seconds:g} s; row: {lease}"
        time.sleep(0.1)


def test_after_kill_9_the_restarted_process_polls_at_once(
    tmp_path: Path, sagemaker: SageMakerSim, slack: FakeSlack
) -> None:
    """The killed holder's lease has most of its TTL (60 s) to run, but its process is gone: the
    process started after it takes the lease and lists the queue within seconds."""
    sagemaker.add("bert")
    env = serve_env(tmp_path, slack, sagemaker, free_port(), JOBWATCH_LEASE_TTL="60")
    first = start("serve", env=env, cwd=tmp_path)
    try:
        wait_for_lease(env["DATABASE_URL"], first, seconds=30)
    finally:
        first.kill()  # SIGKILL: no finally block, no release
        first.communicate(timeout=10)
    killed = lease_row(env["DATABASE_URL"])
    assert killed is not None and killed.expires_at > utcnow() + timedelta(seconds=40)
    listed = len(sagemaker.requests)
    second = start("serve", env=env, cwd=tmp_path)
    try:
        wait_for_lease(env["DATABASE_URL"], second, seconds=20)  # 60 s without the takeover
        deadline = time.monotonic() + 10
        while not any(t.endswith(".ListTrainingJobs") for t in sagemaker.requests[listed:]):
            assert time.monotonic() < deadline, "the new holder did not poll"
            time.sleep(0.05)
        lease = lease_row(env["DATABASE_URL"])
        assert lease is not None and lease.fence == killed.fence + 1, "a takeover bumps the fence"
    finally:
        second.terminate()
        second.communicate(timeout=30)


def test_sigterm_releases_the_lease(tmp_path: Path, sagemaker: SageMakerSim, slack: FakeSlack) -> None:
    """A deploy or `docker stop` sends SIGTERM: `serve` shuts down cleanly and gives the lease up, so a
    successor anywhere (another host too) polls at once."""
    port = free_port()
    env = serve_env(tmp_path, slack, sagemaker, port)
    proc = start("serve", env=env, cwd=tmp_path)
    try:
        wait_for_lease(env["DATABASE_URL"], proc, seconds=30)
        deadline = time.monotonic() + 30
        while True:  # serving: the signal reaches waitress's loop
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr[-2000:]
    lease = lease_row(env["DATABASE_URL"])
    assert lease is not None and f":{proc.pid}:" in lease.owner
    assert lease.expires_at < utcnow(), "the lease was not released"
