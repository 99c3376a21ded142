"""Sharded work (PostgreSQL): each scope is a lease row of its own, claimed by one worker.

A scope is what one worker does alone: the queues it polls (rows `shard:<scope>`: a queue, or every
queue of one provider account, bot/worker.py), or a bucket of delivery keys it posts for (rows
`deliver:<bucket>`, bot/pipeline/buckets.py). One keeper claims the scopes of one prefix. A scope's
row in the `lease` table has what the single poller lease has: an owner, an expiry and a fencing
counter. Each worker also keeps a `member:<owner>` row alive (one for all its keepers), so every
worker can count the live ones and take its share of each prefix's scopes, `ceil(scopes / members)`.

One renewal is one write transaction (docs/reliability.md §Sharded polling):
1. the worker's member row is extended (or written);
2. the live members are counted (expired rows, and those of a dead process of this machine, are not);
3. the scope rows it may keep or take are read `FOR UPDATE SKIP LOCKED` (PostgreSQL's row locks: a
   row another transaction is renewing right now is simply passed over, never waited for): its own,
   the expired ones and those of a dead member of this machine. A live worker's rows could neither
   be kept nor taken, so they are not read: at 3,000 scopes and three workers a renewal reads a third
   of them (bench/shards.py --renewals). The share needs only the counts of scopes and members;
4. its own rows are extended; beyond its share it releases the rest (a worker joined); below it, it
   takes expired rows (or those of a dead process of this machine), bumping their fence.

A worker that dies stops renewing: its member row and its scopes expire together, TTL after its last
renewal, and the others' next renewal takes them over with a new fence, so nothing the dead worker
had in flight can commit (`Fence.check`, the same check as the single lease's).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from bot.core.clock import Clock, utcnow
from bot.store.db import Database
from bot.store.lease import Fence, dead_local_owner, process_owner
from bot.store.tables import Lease

SHARD = "shard:"  # polling scopes (queues or accounts)
MEMBER = "member:"


def shard_name(scope: str, prefix: str = SHARD) -> str:
    """The lease row of one scope."""
    return prefix + scope


class Row(NamedTuple):
    """What a renewal reads of one scope row."""

    name: str
    owner: str
    expires_at: datetime
    fence: int


def _set(session: Session, names: list[str], **values: object) -> None:
    """One UPDATE of the scope rows `names` (none: nothing)."""
    if names:
        statement = update(Lease).where(col(Lease.name).in_(names)).values(**values)
        session.execute(statement.execution_options(synchronize_session=False))  # no loaded row is one of them


class ShardKeeper:
    """Claims this worker's share of the scopes named `prefix`<scope> and renews it; `fence(scope)`
    is the proof that every write of that scope checks."""

    def __init__(
        self,
        db: Database,
        *,
        ttl: timedelta = timedelta(seconds=10),
        clock: Clock = utcnow,
        owner: str | None = None,
        prefix: str = SHARD,
    ) -> None:
        self.db = db
        self.prefix = prefix
        self.ttl = ttl
        self.clock = clock
        self.owner = owner or process_owner()
        self._fences: dict[str, Fence] = {}
        self._made: frozenset[str] = frozenset()  # the scope rows known to exist (rows are never deleted)
        self.members = 0  # the live workers the last renewal counted (this one included)

    def renew(self, scopes: Iterable[str]) -> dict[str, Fence]:
        """Keep, take or give up scopes so this worker holds its share; returns scope -> fence."""
        wanted = sorted(set(scopes))
        now = self.clock()
        until = now + self.ttl
        with self.db.write() as session:
            me = session.get(Lease, MEMBER + self.owner, with_for_update=True)
            if me is None:
                me = Lease(name=MEMBER + self.owner, owner=self.owner, expires_at=until, fence=0)
            me.expires_at = until
            session.add(me)
            members = session.exec(select(Lease).where(col(Lease.name).startswith(MEMBER))).all()
            for gone in [m for m in members if m.expires_at < now - 10 * self.ttl]:  # long-dead workers
                session.delete(gone)
            dead = [m.owner for m in members if dead_local_owner(m.owner)]
            live = sum(1 for m in members if m.expires_at >= now and m.owner not in dead)
            share = math.ceil(len(wanted) / max(1, live))
            self.members = live
            names = [shard_name(s, self.prefix) for s in wanted]
            made = frozenset(names)
            if made != self._made:  # new scopes (or the first renewal): make their rows
                present = set(session.exec(select(Lease.name).where(col(Lease.name).in_(names))).all())
                for name in names:
                    if name not in present:
                        session.add(Lease(name=name, owner="", expires_at=now - timedelta(seconds=1), fence=0))
                session.flush()
            # Only the rows it may keep or take: a member's rows expire with (or before) its member row,
            # so a dead member's unexpired rows are exactly those whose owner is in `dead`. Rows of
            # scopes not wanted (a queue since removed) are left alone, to expire.
            keep_or_take = or_(Lease.owner == self.owner, col(Lease.expires_at) < now, col(Lease.owner).in_(dead))
            found = session.execute(
                select(col(Lease.name), col(Lease.owner), col(Lease.expires_at), col(Lease.fence))
                .where(col(Lease.name).startswith(self.prefix), keep_or_take)
                .order_by(col(Lease.name))
                .with_for_update(skip_locked=True)
            ).all()
            rows = [Row(*r) for r in found if r[0] in made]
            mine = [r for r in rows if self._ours(r)]
            keep, release = mine[:share], mine[share:]  # beyond my share: a worker joined; the others take these
            free = [r for r in rows if not self._ours(r) and (r.expires_at < now or r.owner in dead)]
            take = free[: max(0, share - len(keep))]
            _set(session, [r.name for r in release], expires_at=now - timedelta(seconds=1))
            _set(session, [r.name for r in keep], expires_at=until)
            # the previous holder's fence can never write again
            _set(session, [r.name for r in take], owner=self.owner, fence=col(Lease.fence) + 1, expires_at=until)
            cut = len(self.prefix)
            held: dict[str, Fence] = {r.name[cut:]: Fence(r.name, self.owner, r.fence) for r in keep}
            held.update({r.name[cut:]: Fence(r.name, self.owner, r.fence + 1) for r in take})
        self._fences = held
        self._made = made  # committed: those rows exist now
        return dict(held)

    def _ours(self, row: Row) -> bool:
        if row.owner != self.owner:
            return False
        known = self._fences.get(row.name[len(self.prefix) :])
        return known is None or known.token == row.fence

    def fence(self, scope: str) -> Fence | None:
        """The fence of `scope` from the last renewal (None when another worker holds it)."""
        return self._fences.get(scope)

    def current(self, fence: Fence) -> Fence | None:
        """The fence this keeper holds now for the scope `fence` was issued for (None: not held,
        or `fence` is not one of this keeper's)."""
        if not fence.name.startswith(self.prefix):
            return None
        return self._fences.get(fence.name[len(self.prefix) :])

    def held(self) -> set[str]:
        """The scopes this worker holds now."""
        return set(self._fences)

    def release(self) -> None:
        """Give every scope and the membership up at a clean shutdown, so the others take over at once."""
        past = self.clock() - timedelta(seconds=1)
        with self.db.write() as session:
            names = [f.name for f in self._fences.values()] + [MEMBER + self.owner]
            for row in session.exec(select(Lease).where(col(Lease.name).in_(names)).with_for_update()).all():
                fence = self._fences.get(row.name[len(self.prefix) :])
                if row.owner == self.owner and (fence is None or fence.token == row.fence):
                    row.expires_at = past
                    session.add(row)
        self._fences = {}
