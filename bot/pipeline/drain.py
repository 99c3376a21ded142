"""The channels' drainers, for the delivery stage of bot/pipeline/deliver.py.

Each Slack channel, and each person owed a DM (keyed by the person), is drained by a task of its
own on a bounded pool of threads, apart from the scheduler's: a channel that Slack answers slowly,
rate-limits (Retry-After), whose workspace token was refused, or whose posts fail, delays no other
channel, and a long backlog holds one thread of this pool, not the scheduler's. A drainer reads its
channel's due rows (again after each batch, so new ones join), posts them one at a time at the
channel's pace (bot/slackapi/pace.py) through bot/pipeline/send.py, and ends when nothing is due.

There is at most one drainer per channel id, whatever team its rows carry: an operators' notice
(`ops_team`) and an alert (the workspace's id) of one channel share Slack's per-channel limit and
its pace. When more channels are due than there are slots, the others wait for one, least recently
served first, and a drainer that held its slot for `turn` seconds while others wait yields it.

A drainer stops before its next post when the worker shuts down, when its channel has rows for
recovery to settle (`recall`), or when the fence it started with is gone: a claim found another
owner (LostLease) or the keeper lost it (docs/reliability.md §The poller lease). That fence is the
poller lease's, or with sharded delivery that of the channel's bucket (bot/pipeline/buckets.py).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from bot.pipeline.send import Sender, Stats
from bot.slackapi.errors import Kind
from bot.slackapi.pace import Pace
from bot.store import outbox
from bot.store.lease import Fence, LostLease

log = logging.getLogger("bot.pipeline.deliver")  # one logger for the delivery stage

BATCH = 50  # rows read at each look at a channel's due rows


class Drainers:
    """At most one running drainer per channel, at most `slots` at once."""

    def __init__(
        self,
        sender: Sender,
        pace: Callable[[str], Pace],
        *,
        slots: int,
        turn: float,
        sleep: Callable[[float], object] | None,
        monotonic: Callable[[], float],
        report: Callable[[Stats], None],
        current: Callable[[Fence], Fence | None],
    ) -> None:
        self.sender = sender
        self.current = current  # the fence its keeper holds now for the scope of a fence
        self.pace = pace
        self.slots = max(1, slots)
        self.turn = turn
        self.monotonic = monotonic  # the time paces read
        self.report = report
        self._stop = threading.Event()
        self.sleep = sleep or self._stop.wait  # by default a shutdown cuts a pace's wait short
        self._lock = threading.Condition()
        self._running: set[str] = set()
        self._waiting: dict[str, Fence | None] = {}  # channels owed a drainer (in the order they came), each's fence
        self._served: dict[str, float] = {}  # when each channel last got a slot
        self._recalled: set[str] = set()
        self._lost: set[Fence] = set()  # fences a claim found lost
        self._pool: ThreadPoolExecutor | None = None

    def busy(self) -> set[str]:
        """The channels whose drainer is running now."""
        with self._lock:
            return set(self._running)

    def start(self, channels: Mapping[str, Fence | None]) -> None:
        """Make sure each of `channels` has its drainer, started behind the fence given with it;
        those beyond the free slots wait for one."""
        with self._lock:
            if self._stop.is_set():
                return
            for channel, fence in channels.items():
                if channel not in self._running:
                    self._waiting[channel] = fence
            self._fill()

    def recall(self, channels: Iterable[str]) -> None:
        """Ask the drainers of `channels` to stop before their next post (recovery's turn)."""
        with self._lock:
            self._recalled |= set(channels) & self._running

    def wait(self) -> None:
        """Until no drainer runs and none waits for a slot."""
        with self._lock:
            self._lock.wait_for(lambda: not self._running and not self._waiting)

    def stop(self) -> None:
        """Stop every drainer before its next post and wait for them (a post in flight is settled first)."""
        self._stop.set()
        with self._lock:
            self._waiting.clear()
            pool = self._pool
        if pool is not None:
            pool.shutdown(wait=True)

    # -- slots -----------------------------------------------------------------------------

    def _fill(self) -> None:
        """Give free slots to waiting channels, least recently served first (the lock is held)."""
        free = self.slots - len(self._running)
        if free <= 0 or not self._waiting:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="drain")
        for channel in sorted(self._waiting, key=lambda c: self._served.get(c, -math.inf))[:free]:
            fence = self._waiting.pop(channel)
            self._running.add(channel)
            self._served[channel] = time.monotonic()
            self._pool.submit(self._run, channel, fence)

    def _run(self, channel: str, fence: Fence | None) -> None:
        stats = Stats()
        yielded = False
        try:
            yielded = self._drain(channel, fence, stats)
        except LostLease:
            if fence is not None:
                self._lost.add(fence)
            log.warning("lease_lost during delivery channel=%s", channel)
        except Exception:  # the next dispatch starts the channel again; the others go on
            log.exception("drain_failed channel=%s", channel)
        finally:
            self.report(stats)
            with self._lock:
                self._running.discard(channel)
                self._recalled.discard(channel)
                if yielded and not self._stop.is_set():
                    self._waiting.setdefault(channel, fence)
                if not self._stop.is_set():
                    self._fill()
                self._lock.notify_all()

    # -- one channel -----------------------------------------------------------------------

    def _drain(self, channel: str, fence: Fence | None, stats: Stats) -> bool:
        """Post the channel's due rows until none is left; True when it yielded its slot."""
        pace = self.pace(channel)
        started = time.monotonic()
        tried: set[int] = set()  # a row tried once and still due (a note waiting for its alert) waits for the next turn
        while True:
            with self.sender.db.read() as session:
                due = outbox.due_in(
                    session, channel, self.sender.clock(), BATCH + len(tried), skip_teams=self.sender.blocked_teams()
                )
            rows = [(item_id, team) for item_id, team in due if item_id not in tried]
            if not rows:
                return False
            for item_id, team in rows:
                if self._halted(channel, fence):
                    return False
                if self._waiting and time.monotonic() - started >= self.turn:
                    return True
                if self.sender.blocked(team):
                    break  # read again without that workspace's rows
                tried.add(item_id)
                wait = pace.wait(self.monotonic())
                if wait > 0:
                    self.sleep(wait)
                    if self._halted(channel, fence):
                        return False
                outcome = self.sender.send(item_id, stats, fence)
                if outcome is None or outcome.kind is Kind.BAD_PAYLOAD:
                    continue
                if outcome.kind is Kind.RETRY:
                    if outcome.retry_after:  # Slack's Retry-After holds the channel, and only it
                        pace.hold(self.monotonic(), outcome.retry_after)
                        return False
                    continue
                if outcome.kind is Kind.TOKEN:
                    break
                return False  # ambiguous (recovery looks it up first) or the channel is gone

    def _halted(self, channel: str, fence: Fence | None) -> bool:
        """Whether the drainer must stop before its next post."""
        if self._stop.is_set() or channel in self._recalled:
            return True
        return fence is not None and (fence in self._lost or self.current(fence) != fence)
