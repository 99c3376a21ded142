"""The single-poller lease: a row with an owner, an expiry and a fencing counter.

An owner is `hostname:pid:token:machine`. `machine` names the kernel boot and the PID namespace
the process runs in (see `machine_identity`), so a successor on the same machine can tell that the
holder's process is gone (after `kill -9`, an OOM kill, a crash) and take the lease at once
instead of waiting out its TTL. Anywhere else (another host, another container, an owner written
without a machine identity) the TTL stands.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from bot.core.clock import Clock, utcnow
from bot.store.db import Database
from bot.store.tables import Lease

log = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
PID_NAMESPACE = Path("/proc/self/ns/pid")


@functools.cache
def machine_identity() -> str:
    """This kernel boot and PID namespace as 12 hex digits, or "" where Linux's /proc does not tell.

    Two processes with the same identity see the same process table, so `os.kill(pid, 0)` in one
    answers for a pid the other wrote. Containers may repeat a hostname across machines (and pids
    across namespaces); the boot id (proc(5): /proc/sys/kernel/random/boot_id, new at every boot)
    and the namespace inode (namespaces(7): the inode of /proc/self/ns/pid identifies the namespace)
    tell them apart.
    """
    try:
        boot = BOOT_ID.read_text(encoding="ascii").strip()
        namespace = os.stat(PID_NAMESPACE)
    except (OSError, ValueError):
        return ""
    if not boot:
        return ""
    return hashlib.sha256(f"{boot}:{namespace.st_dev}:{namespace.st_ino}".encode()).hexdigest()[:12]


def process_owner(pid: int | None = None) -> str:
    """The owner string of a process on this machine (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}:{machine_identity()}"


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists here (signal 0 checks without sending anything).
    Only "no such process" counts as dead; an unreaped zombie, or a pid another user owns, is alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: it exists; anything else: let the TTL decide
        return True
    return True


def dead_local_owner(owner: str) -> bool:
    """True only when `owner` is a process of this machine (same hostname, boot and PID namespace)
    that no longer exists. Anything unsure is False: a recycled pid looks alive, an owner from
    another machine or without a machine identity is never judged, and so only waits its TTL."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4:
        return False
    host, pid_text, _, machine = parts
    here = machine_identity()
    if not here or machine != here or host != socket.gethostname():
        return False
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    # Our own pid is alive (another keeper in this process); 0 and negatives are not one process.
    return pid > 0 and pid != os.getpid() and not _alive(pid)


class LeaseKeeper:
    """Acquires and renews the lease; `fence()` is the proof pipeline writes check."""

    def __init__(
        self,
        db: Database,
        *,
        name: str = "poller",
        ttl: timedelta = timedelta(seconds=30),
        clock: Clock = utcnow,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.owner = owner or process_owner()
        self._fence: Fence | None = None

    def renew(self) -> Fence | None:
        """Take the lease if free, expired or held by a dead process of this machine; extend it if
        ours; None while another owner holds it."""
        now = self.clock()
        with self.db.write() as session:
            lease = session.get(Lease, self.name, with_for_update=True)  # held until commit
            if lease is None:
                lease = Lease(name=self.name, owner=self.owner, expires_at=now + self.ttl, fence=1)
            elif lease.owner == self.owner and (self._fence is None or self._fence.token == lease.fence):
                lease.expires_at = now + self.ttl
            elif lease.expires_at < now or dead_local_owner(lease.owner):
                if lease.expires_at >= now:
                    log.warning("lease_taken_from_dead_process owner=%s fence=%d", lease.owner, lease.fence)
                lease.owner = self.owner
                lease.fence += 1  # the dead holder's fence can never write again
                lease.expires_at = now + self.ttl
            else:
                self._fence = None
                return None
            session.add(lease)
            self._fence = Fence(self.name, self.owner, lease.fence)
        return self._fence

    def fence(self) -> Fence | None:
        """The fence from the last successful renewal (None when not holding the lease)."""
        return self._fence

    def release(self) -> None:
        """Give the lease up at a clean shutdown so a successor need not wait for expiry."""
        if self._fence is None:
            return
        with self.db.write() as session:
            lease = session.get(Lease, self.name, with_for_update=True)
            if lease is not None and lease.owner == self.owner and lease.fence == self._fence.token:
                lease.expires_at = self.clock() - timedelta(seconds=1)
                session.add(lease)
        self._fence = None


class LostLease(Exception):
    """Another process took over polling; this one must not write."""


@dataclass(frozen=True)
class Fence:
    """Proof of holding the poller lease, checked inside every pipeline write."""

    name: str
    owner: str
    token: int

    def check(self, session: Session) -> None:
        """Raise LostLease unless the lease row still names us with our token.

        The row stays locked (FOR UPDATE on PostgreSQL; SQLite's write lock covers it) until the
        caller's transaction ends, so no takeover can commit between this check and the writes.
        """
        lease = session.get(Lease, self.name, with_for_update=True)
        if lease is None or lease.owner != self.owner or lease.fence != self.token:
            raise LostLease(f"lease {self.name} now belongs to another poller")
