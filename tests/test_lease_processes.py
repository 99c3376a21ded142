"""Two OS processes contend for the poller lease on one database: never two holders at once.

Each process loops: renew the lease; while holding it, make fenced writes (Fence.check, then a row
in a log table, in one write transaction); now and then release it, or stall past the TTL and then
try one more write with the stale fence, as a paused zombie would. Read back in commit order, the
log's fences never go down and each fence has one owner: no writes of two holders interleave.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from multiprocessing import get_context

from sqlalchemy import Column, Integer, MetaData, String, Table, select

from bot.db import Database
from bot.lease import LeaseKeeper
from bot.pipeline.enqueue import LostLease

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
