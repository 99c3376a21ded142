"""Stage 4: outbox -> Slack, exactly once per (alert, channel).

Protocol (docs/reliability.md §Exactly-once delivery): claim a row (pending -> sending, committed) before the call;
post with the alert id in message metadata; settle (sent | pending with backoff | dead).
A row left in `sending` (crash, timeout, 5xx) is settled by recovery, which looks the id up
in the channel's history (or the thread's replies) before it ever posts again.
Posts are paced per channel; channels are drained in parallel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from sqlmodel import Session

from bot.blocks import render
from bot.core.clock import Clock, utcnow
from bot.core.outbox import (
    IN_FLIGHT,
    OPENS_THREAD,
    OWED,
    QUIET_HELD,
    THREADED,
    DigestOrigin,
    OutboxKind,
    OutboxState,
    TextPayload,
    origin_of,
)
from bot.pipeline.digest import fold as fold_digest
from bot.pipeline.messages import EVENT_TYPE, UnknownKind, message_for, metadata
from bot.slackapi.errors import Failure, Kind, classify
from bot.slackapi.pace import Pace
from bot.store import outbox, threads
from bot.store.db import Database
from bot.store.lease import Fence
from bot.store.tables import JobThread, OutboxItem
from providers import Job, JobStatus

log = logging.getLogger(__name__)

BROADCAST = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})
MAX_ATTEMPTS = 12
BATCH = 200
THREAD_WAIT = timedelta(seconds=5)  # an owner note waits this long for the alert that starts its thread
TOKEN_PAUSE = timedelta(minutes=5)  # after invalid_auth & co: try the workspace again this much later
# conversations.open answers that mean this person cannot get a DM from us (missing_scope: the app
# lacks im:write): the row is dead, the person's other DMs too; channels are not affected.
DM_UNREACHABLE = frozenset({"user_not_found", "user_disabled", "cannot_dm_bot", "missing_scope"})


@dataclass
class Stats:
    """What one delivery round did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    ambiguous: int = 0
    recovered: int = 0

    def add(self, other: Stats) -> None:
        """Accumulate another round's counts."""
        for count in fields(self):
            setattr(self, count.name, getattr(self, count.name) + getattr(other, count.name))


def dm_failure(failure: Failure) -> Failure:
    """A failure met while opening a person's IM: unreachable people are like a gone channel (dead
    rows, no subscription to pause); anything else is retried, since opening posts nothing."""
    if failure.code in DM_UNREACHABLE:
        return Failure(Kind.CHANNEL_GONE, failure.code)
    if failure.kind is Kind.AMBIGUOUS:
        return Failure(Kind.RETRY, failure.code)
    return failure


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
        self.client_for = client_for
        self.clock = clock
        self.fence = fence
        self.rate = rate
        self.burst = burst
        self.recovery_after = recovery_after
        self.workers = workers
        self.digest_threshold = digest_threshold
        self.stop_by = dict(stop_by or {})  # queue -> provider, for queues whose alerts carry a Stop button
        self.sleep = sleep
        self.monotonic = monotonic
        self.thread_wait = thread_wait  # how long a thread-only note waits before looking for its alert again
        self._paces: dict[tuple[str, str], Pace] = {}
        self._paces_lock = threading.Lock()
        self._blocked_teams: dict[str, datetime] = {}  # token refused: no posts until then
        self._ims: dict[tuple[str, str], str] = {}  # (team, user) -> the IM channel conversations.open gave

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

    def _pace(self, team: str, channel: str) -> Pace:
        with self._paces_lock:
            return self._paces.setdefault((team, channel), Pace(self.rate, self.burst))

    def _drain(self, team: str, channel: str, ids: list[int]) -> Stats:
        stats = Stats()
        pace = self._pace(team, channel)
        for item_id in ids:
            blocked = self._blocked_teams.get(team)
            if blocked is not None and blocked > self.clock():
                break
            wait = pace.wait(self.monotonic())
            if wait > 0:
                self.sleep(wait)
            outcome = self._send_one(item_id, stats)
            if outcome is not None and outcome.kind in (Kind.AMBIGUOUS, Kind.CHANNEL_GONE, Kind.TOKEN):
                break
            if outcome is not None and outcome.kind is Kind.RETRY and outcome.retry_after:
                pace.hold(self.monotonic(), outcome.retry_after)
                break
        return stats

    # -- digests ---------------------------------------------------------------------------

    def fold_digests(self) -> int:
        """Fold the ready alerts of any channel with more than `digest_threshold` of them into one
        digest (a parent with counts by status, and thread replies listing every job). Folding is
        one transaction: the alerts become `digested` and the digest rows `pending` together."""
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
            jobs = [Job.model_validate_json(r.payload) for r in rows]
            chunks = fold_digest(session, rows, jobs, origin=DigestOrigin.BURST, team=team, channel=channel, now=now)
        log.info("digest channel=%s alerts=%d replies=%d", channel, len(rows), chunks)

    # -- one row ---------------------------------------------------------------------------

    def _claim(self, item_id: int) -> tuple[OutboxItem, JobThread | None] | None:
        now = self.clock()
        with self.db.write() as session:
            fence = self.fence()
            if fence is not None:
                fence.check(session)
            item = outbox.get(session, item_id)
            if item is None or item.state != OutboxState.PENDING:
                return None
            thread = threads.of(session, item) if item.kind in THREADED else None
            if (
                item.kind == OutboxKind.NOTE
                and TextPayload.load(item.payload).thread_only
                and self._not_yet(session, item, thread, now)
            ):
                return None
            parent_ts = None
            if item.kind == OutboxKind.DIGEST_PART and item.parent_id is not None:
                parent = outbox.get(session, item.parent_id)
                if parent is not None and parent.state in IN_FLIGHT:
                    return None  # the digest goes first; its replies follow in a later turn
                parent_ts = parent.slack_ts if parent is not None else None
            thread_ts = thread.parent_ts if thread else parent_ts
            outbox.claim(session, item, now=now, fence=fence.token if fence else 0, thread_ts=thread_ts)
            return item, thread

    def _not_yet(self, session: Session, item: OutboxItem, thread: JobThread | None, now: datetime) -> bool:
        """Whether a note that may only go in the job's thread, after the alert it follows (an owner's
        mention, bot/core/owners.py; a log tail, bot/pipeline/logtail.py), must not go now. It
        waits while that alert is still owed (the alert starts the thread, or replies in it first), and
        is dropped when there is no thread once the alert went another way (folded into a digest, muted,
        dead)."""
        alert = outbox.find(session, item.team_id, item.channel_id, TextPayload.load(item.payload).after)
        if alert is not None and alert.state in OWED:
            # not before the alert's own turn (its backoff, or the end of quiet hours)
            outbox.postpone(session, item, max(now + self.thread_wait, alert.next_attempt_at))
        elif thread is None:
            outbox.mark_dead(session, item, "no_thread")
        else:
            return False
        return True

    def _send_one(self, item_id: int, stats: Stats) -> Failure | None:
        claimed = self._claim(item_id)
        if claimed is None:
            return None
        item, thread = claimed
        try:
            message, job = message_for(item, stop_by=self.stop_by.get(item.queue, ""))
        except UnknownKind as err:  # never posted, never retried; the channel goes on with its next row
            log.error("outbox_unknown_kind outbox_id=%s channel=%s kind=%r", item.id, item.channel_id, err.kind)
            self._settle_dead(item, str(err), stats)
            return None
        client = self.client_for(item.team_id)
        channel = item.channel_id
        if item.kind == OutboxKind.DM:
            try:
                channel = self._im(client, item.team_id, item.channel_id)
            except Exception as err:  # nothing was posted: opening a conversation posts nothing
                failure = dm_failure(classify(err))
                self._settle_failure(item, failure, stats)
                return failure
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": message.text,
            "blocks": message.blocks,
            "metadata": metadata(item.alert_id),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if item.thread_ts:
            kwargs["thread_ts"] = item.thread_ts
            kwargs["reply_broadcast"] = (job is not None and job.status in BROADCAST) or item.kind == OutboxKind.FLAG
        try:
            response = client.chat_postMessage(**kwargs)
        except Exception as err:  # classified below; every outcome is recorded on the row
            failure = classify(err)
            if failure.kind is Kind.BAD_PAYLOAD:
                try:  # one plain-text fallback, then give up
                    response = client.chat_postMessage(**{k: v for k, v in kwargs.items() if k != "blocks"})
                except Exception as err2:
                    second = classify(err2)
                    self._settle_failure(item, failure if second.kind is Kind.BAD_PAYLOAD else second, stats)
                    return second
            else:
                self._settle_failure(item, failure, stats)
                return failure
        if self._settle_sent(item, str(response["ts"])):
            stats.sent += 1
        if thread is not None and job is not None:
            self._update_parent(client, item, thread, job)
        if item.kind == OutboxKind.DIGEST and origin_of(item.alert_id) is DigestOrigin.AWAY:
            self._update_cards(client, item)
        return None

    def _settle_sent(self, item: OutboxItem, ts: str) -> bool:
        with self.db.write() as session:
            row = outbox.sending(session, item.id)
            if row is None:
                return False
            outbox.mark_sent(session, row, ts)
            if row.kind in OPENS_THREAD and row.thread_ts is None:
                threads.start(session, row, ts)
        return True

    def _settle_dead(self, item: OutboxItem, error: str, stats: Stats) -> None:
        """A claimed row that can never be posted (its kind is unknown): dead, with why."""
        with self.db.write() as session:
            row = outbox.sending(session, item.id)
            if row is None:
                return
            outbox.mark_dead(session, row, error)
        stats.dead += 1

    def _settle_failure(self, item: OutboxItem, failure: Failure, stats: Stats) -> None:
        now = self.clock()
        log.warning(
            "slack_post_failed outbox_id=%s channel=%s kind=%s code=%s",
            item.id,
            item.channel_id,
            failure.kind.value,
            failure.code,
        )
        if failure.kind is Kind.AMBIGUOUS:
            stats.ambiguous += 1
            with self.db.write() as session:
                row = outbox.sending(session, item.id)
                if row is not None:
                    outbox.note_error(session, row, f"ambiguous: {failure.code}")
            return
        if failure.kind is Kind.TOKEN:
            self._blocked_teams[item.team_id] = self.clock() + TOKEN_PAUSE
        with self.db.write() as session:
            row = outbox.sending(session, item.id)
            if row is None:
                return
            if failure.kind is Kind.CHANNEL_GONE:  # dead rows, paused subscriptions, reason kept
                outbox.pause_channel(session, row, failure.code)
                stats.dead += 1
            elif failure.kind is Kind.BAD_PAYLOAD or row.attempts >= MAX_ATTEMPTS:
                outbox.mark_dead(session, row, failure.code)
                stats.dead += 1
            else:
                backoff = failure.retry_after or min(300.0, 2.0 ** min(row.attempts, 8))
                refund = failure.kind is Kind.TOKEN or failure.code == "ratelimited"  # not the row's fault
                outbox.retry(session, row, error=failure.code, at=now + timedelta(seconds=backoff), refund=refund)
                stats.retried += 1

    def _im(self, client: WebClient, team: str, user: str) -> str:
        """The IM channel with `user` (conversations.open, scope im:write), cached per process."""
        known = self._ims.get((team, user))
        if known is None:
            response = client.conversations_open(users=user)
            known = str((response.get("channel") or {})["id"])
            self._ims[(team, user)] = known
        return known

    def _update_parent(self, client: WebClient, item: OutboxItem, thread: JobThread, job: Job) -> None:
        """Show the job's current status on its thread parent; best effort."""
        message = render.parent_message(job, stop_by=self.stop_by.get(item.queue, ""))
        try:
            client.chat_update(
                channel=item.channel_id,
                ts=thread.parent_ts,
                text=message.text,
                blocks=message.blocks,
                metadata=metadata(thread.parent_alert_id),
            )
        except Exception as err:
            log.warning("parent_update_failed outbox_id=%s code=%s", item.id, classify(err).code)

    def _update_cards(self, client: WebClient, digest: OutboxItem) -> None:
        """After a quiet-hours digest (bot/core/quiet.py): bring the card of each job it folded up to
        date, with the job's latest held state; best effort, like every parent update."""
        with self.db.read() as session:
            rows = outbox.children(session, digest.id, QUIET_HELD)
            latest = {(r.queue, r.job_id): r for r in rows}
            cards = [(row, threads.of(session, row)) for row in latest.values()]
        for row, thread in cards:
            if thread is not None:
                self._update_parent(client, row, thread, Job.model_validate_json(row.payload))

    # -- recovery --------------------------------------------------------------------------

    def recover(self) -> Stats:
        """Settle rows stuck in `sending`: sent if Slack has them, pending (to repost) if not."""
        stats = Stats()
        cutoff = self.clock() - self.recovery_after
        with self.db.read() as session:
            stuck = outbox.stuck(session, cutoff)
        groups: dict[tuple[str, str, str | None], list[OutboxItem]] = defaultdict(list)
        for item in stuck:
            groups[(item.team_id, item.channel_id, item.thread_ts)].append(item)
        for (team, channel, thread_ts), items in groups.items():
            oldest = min(i.sending_started_at or cutoff for i in items) - timedelta(seconds=5)
            client = self.client_for(team)
            where = channel
            if items[0].kind == OutboxKind.DM:  # channel is the person; their IM holds the messages
                try:
                    where = self._im(client, team, channel)
                except Exception as err:
                    failure = dm_failure(classify(err))
                    log.warning("recovery_open_failed user=%s code=%s", channel, failure.code)
                    if failure.kind is Kind.CHANNEL_GONE:  # never reachable: nothing was posted either
                        for item in items:
                            self._settle_failure(item, failure, stats)
                    continue
            try:
                found = self._posted_ids(client, where, thread_ts, oldest)
            except Exception as err:
                failure = classify(err)
                log.warning("recovery_lookup_failed channel=%s code=%s", channel, failure.code)
                if failure.kind is Kind.CHANNEL_GONE:
                    for item in items:
                        self._settle_failure(item, failure, stats)
                if failure.code != "missing_scope":
                    continue
                found = {}  # no history scope: fall back to at-least-once
            for item in items:
                ts = found.get(item.alert_id)
                if ts is None:
                    self._requeue(item)
                elif self._settle_sent(item, ts):
                    stats.recovered += 1
        return stats

    def _requeue(self, item: OutboxItem) -> None:
        with self.db.write() as session:
            row = outbox.sending(session, item.id)
            if row is not None:
                outbox.requeue(session, row, self.clock())

    def _posted_ids(self, client: WebClient, channel: str, thread_ts: str | None, oldest: datetime) -> dict[str, str]:
        """alert_id -> ts of our messages in a channel (or one thread) since `oldest`."""
        found: dict[str, str] = {}
        cursor: str | None = None
        for _page in range(50):
            args: dict[str, Any] = {
                "channel": channel,
                "oldest": f"{oldest.timestamp():.6f}",
                "inclusive": True,
                "include_all_metadata": True,
                "limit": 200,
            }
            if cursor:
                args["cursor"] = cursor
            if thread_ts:
                response = client.conversations_replies(ts=thread_ts, **args)
            else:
                response = client.conversations_history(**args)
            messages: list[dict[str, Any]] = response.get("messages") or []
            for message in messages:
                meta: dict[str, Any] = message.get("metadata") or {}
                if meta.get("event_type") == EVENT_TYPE:
                    alert_id = (meta.get("event_payload") or {}).get("alert_id")
                    if alert_id:
                        found[str(alert_id)] = str(message.get("ts"))
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return found
