"""Sharded delivery (PostgreSQL, `JOBWATCH_SHARDED`): the delivery keys spread over the workers.

A delivery key is what one drainer drains (bot/pipeline/drain.py): the outbox rows' `channel_id`,
that is a Slack channel, the person a DM goes to, or a workflow step's execution. Each key falls in
one of `BUCKETS` buckets by a stable hash (CRC-32 of its UTF-8 bytes: the same in every process,
unlike Python's salted `hash()`), and each bucket is a scope `deliver:<bucket>` claimed with the
polling shards' machinery (bot/store/shards.py: member rows, `ceil(buckets / members)` each, a new
fence on takeover). A worker recovers, folds and drains only the keys of the buckets it holds, and
every claim, settle and fold of a key checks its bucket's fence (docs/reliability.md §Sharded delivery).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from bot.store.lease import Fence
from bot.store.shards import ShardKeeper

BUCKETS = 64  # fixed: a key's bucket must be the same in every worker of every version
PREFIX = "deliver:"


def bucket_of(key: str, buckets: int = BUCKETS) -> str:
    """The bucket of a delivery key, as the scope name `00`..`63`."""
    return f"{zlib.crc32(key.encode()) % buckets:02d}"


def all_buckets(buckets: int = BUCKETS) -> list[str]:
    """Every bucket's scope name."""
    return [f"{n:02d}" for n in range(buckets)]


class Buckets:
    """The delivery buckets this worker holds, renewed with its keeper."""

    def __init__(self, keeper: ShardKeeper, count: int = BUCKETS) -> None:
        self.keeper = keeper
        self.count = count

    def renew(self) -> tuple[list[str], list[str]]:
        """Keep, take or give up buckets to hold this worker's share; (gained, gone)."""
        before = self.keeper.held()
        now_held = set(self.keeper.renew(all_buckets(self.count)))
        return sorted(now_held - before), sorted(before - now_held)

    def fence(self, key: str) -> Fence | None:
        """The fence of the bucket of `key` (None: another worker delivers it)."""
        return self.keeper.fence(bucket_of(key, self.count))

    def current(self, fence: Fence) -> Fence | None:
        """The fence held now for the bucket `fence` was issued for."""
        return self.keeper.current(fence)

    def held(self) -> set[str]:
        """The buckets this worker holds now."""
        return self.keeper.held()

    def release(self) -> None:
        """Hand every bucket over at a clean shutdown."""
        self.keeper.release()


@dataclass(frozen=True)
class Share:
    """Which delivery keys one round of delivery handles, and behind which fence each: with
    `buckets`, the keys of the buckets this worker holds, each behind its bucket's fence; without,
    every key behind `lease` (the single poller lease's fence, or None: unfenced, as in tests)."""

    buckets: Buckets | None = None
    lease: Fence | None = None

    def holds(self, key: str) -> bool:
        """Whether this round delivers `key`."""
        return self.buckets is None or self.buckets.fence(key) is not None

    def fence(self, key: str) -> Fence | None:
        """What the writes of `key` check in this round."""
        return self.lease if self.buckets is None else self.buckets.fence(key)
