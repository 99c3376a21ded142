"""Stage 4: outbox -> Slack, exactly once per (alert, channel).

Protocol (docs/reliability.md §Exactly-once delivery): claim a row (pending -> sending, committed) before the call;
post with the alert id in message metadata; settle (sent | pending with backoff | dead).
A row left in `sending` (crash, timeout, 5xx) is settled by recovery, which looks the id up
in the channel's history (or the thread's replies) before it ever posts again.
Posts are paced per channel, and each channel is drained on its own: none waits for another.

This module runs the dispatcher (docs/architecture.md §Delivery and faults): a short tick of the
worker's scheduler does recovery (bot/pipeline/recover.py), folds a burst of alerts and flags for
one channel into a digest (bot/pipeline/digest.py), reads which channels have due rows, makes sure
each has its drainer (bot/pipeline/drain.py) and returns. A drainer posts its channel's rows one at
a time through bot/pipeline/send.py, which renders each with bot/pipeline/messages.py.

With sharded delivery (`shard`, bot/pipeline/buckets.py) every worker runs the dispatcher, and it
recovers, folds and drains only the keys of the buckets this worker holds, each behind its bucket's
fence; `run_once` stays a round of every key behind the poller lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta

from slack_sdk import WebClient

from bot.core.alert_ids import DigestOrigin
from bot.core.clock import Clock, utcnow
from bot.pipeline.buckets import Buckets, Share
from bot.pipeline.digest import fold as fold_digest
from bot.pipeline.drain import Drainers
from bot.pipeline.messages import message_for, metadata
from bot.pipeline.recover import recover
from bot.pipeline.send import THREAD_WAIT, Sender, Stats
from bot.slackapi.pace import Pace
from bot.store import outbox
from bot.store.db import Database
from bot.store.lease import Fence, LostLease

__all__ = ["HELD", "Deliverer", "Stats", "message_for", "metadata"]

log = logging.getLogger(__name__)

HELD = 1.0  # a channel whose pace allows no post for this many seconds (a Retry-After) gets no drainer yet


class Deliverer:
    """Drains the outbox into Slack, each channel on its own."""

    def __init__(
        self,
        db: Database,
        client_for: Callable[[str], WebClient],
        *,
        clock: Clock = utcnow,
        fence: Callable[[], Fence | None] = lambda: None,
        rate: float = 1.0,
        burst: float = 2.0,
        recovery_after: timedelta = timedelta(seconds=20),
        workers: int = 64,  # channels drained at once, one thread each
        turn: float = 10.0,  # seconds a drainer keeps its thread while other channels wait for one
        digest_threshold: int = 20,
        stop_by: Mapping[str, str] | None = None,
        sleep: Callable[[float], object] | None = None,  # None: real time, cut short by close()
        monotonic: Callable[[], float] | None = None,
        thread_wait: timedelta = THREAD_WAIT,
        on_stats: Callable[[Stats], None] = lambda _stats: None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.recovery_after = recovery_after
        self.digest_threshold = digest_threshold
        self.on_stats = on_stats  # every drainer's and every recovery's counts (the worker's metrics)
        self.sender = Sender(db, client_for, clock=clock, fence=fence, stop_by=stop_by, thread_wait=thread_wait)
        self._paces: dict[str, Pace] = {}  # by channel (a DM's: the person's)
        self._paces_lock = threading.Lock()
        self._tallies: list[Stats] = []  # the rounds of run_once counting what the drainers do
        self._tallies_lock = threading.Lock()
        self.monotonic = monotonic or time.monotonic
        self.buckets: Buckets | None = None  # sharded delivery: the buckets of keys this worker drains
        self.drainers = Drainers(
            self.sender,
            self._pace,
            slots=workers,
            turn=turn,
            sleep=sleep,
            monotonic=self.monotonic,
            report=self._report,
            current=self._current,
        )

    @property
    def fence(self) -> Callable[[], Fence | None]:
        """Where the lease's current fence comes from (bot/runtime.py gives the lease keeper's)."""
        return self.sender.fence

    @fence.setter
    def fence(self, fence: Callable[[], Fence | None]) -> None:
        self.sender.fence = fence

    def shard(self, buckets: Buckets) -> None:
        """Deliver only the keys of the buckets this worker holds (`dispatch`), and fence every
        settle too, with each key's bucket (docs/reliability.md §Sharded delivery)."""
        self.buckets = buckets
        self.sender.fenced_settles = True

    def _share(self, *, sharded: bool) -> Share:
        """What a round delivers: the held buckets' keys when sharded, else every key behind the lease."""
        if sharded and self.buckets is not None:
            return Share(self.buckets)
        return Share(lease=self.fence())

    def _current(self, fence: Fence) -> Fence | None:
        """The fence held now for what `fence` guards: its bucket, or the poller lease."""
        if self.buckets is not None and fence.name.startswith(self.buckets.keeper.prefix):
            return self.buckets.current(fence)
        return self.fence()

    @property
    def thread_wait(self) -> timedelta:
        """How long a thread-only note waits before looking for its alert again."""
        return self.sender.thread_wait

    @thread_wait.setter
    def thread_wait(self, wait: timedelta) -> None:
        self.sender.thread_wait = wait

    # -- the dispatcher --------------------------------------------------------------------

    def dispatch(self) -> None:
        """One tick: recover stuck rows, fold bursts, and start a drainer for each channel with due
        rows that has none; returns without waiting for them (the worker's 1 s job). Sharded: only
        the keys of the buckets this worker holds."""
        self._round(skip_held=True, share=self._share(sharded=True))

    def run_once(self) -> Stats:
        """Recover stuck rows, then send every due row, each channel on its own drainer, and wait
        for them all: one synchronous round (`jobwatch poll --once`, the tests, the demo, the bench)."""
        total = Stats()
        with self._tally(total):
            self._round(skip_held=False, share=self._share(sharded=False))
            self.drainers.wait()
        return total

    def close(self) -> None:
        """Stop the drainers before their next post and wait for them."""
        self.drainers.stop()

    def recover(self, share: Share | None = None) -> Stats:
        """Settle rows stuck in `sending` (of the keys in `share`; default: every key, behind the
        lease): sent if Slack has them, pending (to repost) if not. The rows of a channel whose
        drainer is running wait: that drainer is asked to stop first."""
        share = share or self._share(sharded=False)
        stats, deferred = recover(self.sender, self.recovery_after, self.drainers.busy(), share)
        self.drainers.recall(deferred)
        self._report(stats)
        return stats

    def _round(self, *, skip_held: bool, share: Share) -> None:
        self.recover(share)
        self.fold_digests(share)
        with self.db.read() as session:
            due = outbox.due_channels(session, self.clock())
        blocked = self.sender.blocked_teams()
        since: dict[str, datetime] = {}
        for d in due:
            if d.team_id not in blocked and share.holds(d.channel_id):
                since[d.channel_id] = min(d.since, since.get(d.channel_id, d.since))
        now = self.monotonic()
        channels = sorted(since, key=lambda c: since[c])  # the longest waiting first
        if skip_held:
            channels = [c for c in channels if self._pace(c).ready_in(now) < HELD]
        self.drainers.start({c: share.fence(c) for c in channels})

    def _report(self, stats: Stats) -> None:
        self.on_stats(stats)
        with self._tallies_lock:
            for tally in self._tallies:
                tally.add(stats)

    @contextmanager
    def _tally(self, total: Stats) -> Iterator[None]:
        with self._tallies_lock:
            self._tallies.append(total)
        try:
            yield
        finally:
            with self._tallies_lock:
                self._tallies.remove(total)

    def _pace(self, channel: str) -> Pace:
        """The pace of one Slack channel, whatever team id its rows carry: the operators' notices
        carry `ops_team` (empty with one workspace) while the alerts of the same channel carry the
        workspace's id; Slack counts the posts of the channel together, and one drainer posts them."""
        with self._paces_lock:
            return self._paces.setdefault(channel, Pace(self.rate, self.burst))

    # -- digests ---------------------------------------------------------------------------

    def fold_digests(self, share: Share | None = None) -> int:
        """Fold the ready rows a burst folds (core.outbox.FOLDED: alerts and slow or stuck flags) of
        any channel (of `share`; default: every one, behind the lease) with more than
        `digest_threshold` of them into one digest (a parent with counts by status and by flag, and
        thread replies listing every job). Folding is one transaction: the rows become `digested`
        and the digest rows `pending` together."""
        share = share or self._share(sharded=False)
        now = self.clock()
        with self.db.read() as session:
            crowded = [(t, c) for t, c in outbox.crowded(session, now, self.digest_threshold) if share.holds(c)]
        for team, channel in crowded:
            try:
                self._fold(team, channel, now, share.fence(channel))
            except LostLease:
                if share.buckets is None:
                    raise  # the poller lease: the whole round stops (bot/worker.py)
                log.warning("bucket_lost during a digest channel=%s", channel)
        return len(crowded)

    def _fold(self, team: str, channel: str, now: datetime, fence: Fence | None) -> None:
        with self.db.write() as session:
            if fence is not None:
                fence.check(session)
            rows = outbox.foldable(session, team, channel, now)
            if len(rows) <= self.digest_threshold:
                return
            chunks = fold_digest(session, rows, origin=DigestOrigin.BURST, team=team, channel=channel, now=now)
        log.info("digest channel=%s rows=%d replies=%d", channel, len(rows), chunks)
