"""Stage 4: outbox -> Slack, exactly once per (alert, channel).

Protocol (docs/reliability.md §Exactly-once delivery): claim a row (pending -> sending, committed) before the call;
post with the alert id in message metadata; settle (sent | pending with backoff | dead).
A row left in `sending` (crash, timeout, 5xx) is settled by recovery, which looks the id up
in the channel's history (or the thread's replies) before it ever posts again.
Posts are paced per channel; channels are drained in parallel.

This module runs the round: recovery first (bot/pipeline/recover.py), then a burst of alerts and
flags for one channel folded into a digest (bot/pipeline/digest.py), then each channel's due rows
drained in turn, one row at a time by bot/pipeline/send.py, which renders it with
bot/pipeline/messages.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from slack_sdk import WebClient

from bot.core.alert_ids import DigestOrigin
from bot.core.clock import Clock, utcnow
from bot.pipeline.digest import fold as fold_digest
from bot.pipeline.messages import message_for, metadata
from bot.pipeline.recover import recover
from bot.pipeline.send import THREAD_WAIT, Sender, Stats
from bot.slackapi.errors import Kind
from bot.slackapi.pace import Pace
from bot.store import outbox
from bot.store.db import Database
from bot.store.lease import Fence

__all__ = ["BATCH", "Deliverer", "Stats", "message_for", "metadata"]

log = logging.getLogger(__name__)

BATCH = 200


class Deliverer:
    """Drains the outbox into Slack."""

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
        workers: int = 64,  # one thread per channel being drained, up to this many
        digest_threshold: int = 20,
        stop_by: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        thread_wait: timedelta = THREAD_WAIT,
    ) -> None:
        self.db = db
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.recovery_after = recovery_after
        self.workers = workers
        self.digest_threshold = digest_threshold
        self.sleep = sleep
        self.monotonic = monotonic
        self.sender = Sender(db, client_for, clock=clock, fence=fence, stop_by=stop_by, thread_wait=thread_wait)
        self._paces: dict[str, Pace] = {}  # by channel (a DM's: the person's)
        self._paces_lock = threading.Lock()

    @property
    def fence(self) -> Callable[[], Fence | None]:
        """Where the lease's current fence comes from (bot/runtime.py gives the lease keeper's)."""
        return self.sender.fence

    @fence.setter
    def fence(self, fence: Callable[[], Fence | None]) -> None:
        self.sender.fence = fence

    @property
    def thread_wait(self) -> timedelta:
        """How long a thread-only note waits before looking for its alert again."""
        return self.sender.thread_wait

    @thread_wait.setter
    def thread_wait(self, wait: timedelta) -> None:
        self.sender.thread_wait = wait

    # -- the round -------------------------------------------------------------------------

    def run_once(self) -> Stats:
        """Recover stuck rows, then send every due row, channels in parallel."""
        stats = Stats()
        stats.add(self.recover())
        self.fold_digests()
        by_channel: dict[tuple[str, str], list[int]] = defaultdict(list)
        with self.db.read() as session:
            rows = outbox.due(session, self.clock(), BATCH * 10)
        for item_id, team, channel in rows:
            by_channel[(team, channel)].append(item_id)
        if not by_channel:
            return stats
        with ThreadPoolExecutor(max_workers=min(self.workers, len(by_channel))) as pool:
            for result in pool.map(lambda kv: self._drain(kv[0][0], kv[0][1], kv[1]), by_channel.items()):
                stats.add(result)
        return stats

    def recover(self) -> Stats:
        """Settle rows stuck in `sending`: sent if Slack has them, pending (to repost) if not."""
        return recover(self.sender, self.recovery_after)

    def _pace(self, channel: str) -> Pace:
        """The pace of one Slack channel, whatever team id its rows carry: the operators' notices
        carry `ops_team` (empty with one workspace) while the alerts of the same channel carry the
        workspace's id, and they are drained apart (in parallel) but Slack counts the posts of the
        channel together."""
        with self._paces_lock:
            return self._paces.setdefault(channel, Pace(self.rate, self.burst))

    def _drain(self, team: str, channel: str, ids: list[int]) -> Stats:
        stats = Stats()
        pace = self._pace(channel)
        for item_id in ids:
            if self.sender.blocked(team):
                break
            wait = pace.wait(self.monotonic())
            if wait > 0:
                self.sleep(wait)
            outcome = self.sender.send(item_id, stats)
            if outcome is not None and outcome.kind in (Kind.AMBIGUOUS, Kind.CHANNEL_GONE, Kind.TOKEN):
                break
            if outcome is not None and outcome.kind is Kind.RETRY and outcome.retry_after:
                pace.hold(self.monotonic(), outcome.retry_after)
                break
        return stats

    # -- digests ---------------------------------------------------------------------------

    def fold_digests(self) -> int:
        """Fold the ready rows a burst folds (core.outbox.FOLDED: alerts and slow or stuck flags) of
        any channel with more than `digest_threshold` of them into one digest (a parent with counts
        by status and by flag, and thread replies listing every job). Folding is one transaction:
        the rows become `digested` and the digest rows `pending` together."""
        now = self.clock()
        with self.db.read() as session:
            crowded = outbox.crowded(session, now, self.digest_threshold)
        for team, channel in crowded:
            self._fold(team, channel, now)
        return len(crowded)

    def _fold(self, team: str, channel: str, now: datetime) -> None:
        with self.db.write() as session:
            fence = self.fence()
            if fence is not None:
                fence.check(session)
            rows = outbox.foldable(session, team, channel, now)
            if len(rows) <= self.digest_threshold:
                return
            chunks = fold_digest(session, rows, origin=DigestOrigin.BURST, team=team, channel=channel, now=now)
        log.info("digest channel=%s rows=%d replies=%d", channel, len(rows), chunks)
