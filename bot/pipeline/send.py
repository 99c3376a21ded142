"""Posting one outbox row, for the round of bot/pipeline/deliver.py: claim it (pending -> sending,
committed behind the lease's fence), post it with its alert id in the message metadata (in the job's
thread when it has one; a DM after opening the person's IM), then settle it: sent, pending again with
backoff, or dead (docs/reliability.md §Exactly-once delivery). A post whose answer was lost stays in
`sending` for bot/pipeline/recover.py. After a post the job's card (its thread parent) is brought up
to date. What a row looks like is bot/pipeline/messages.py; what a Slack failure means,
bot/slackapi/errors.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from sqlmodel import Session

from bot.blocks import render
from bot.core.alert_ids import DigestOrigin, origin_of
from bot.core.clock import Clock
from bot.core.outbox import (
    IN_FLIGHT,
    OPENS_THREAD,
    OWED,
    STATUS_CHANGES,
    THREADED,
    OutboxKind,
    OutboxState,
    TextPayload,
)
from bot.pipeline import steps
from bot.pipeline.messages import UnknownKind, message_for, metadata
from bot.slackapi.errors import Failure, Kind, classify
from bot.store import outbox, threads
from bot.store.db import Database
from bot.store.lease import Fence
from bot.store.tables import JobThread, OutboxItem
from providers import Job, JobStatus

log = logging.getLogger("bot.pipeline.deliver")  # one logger for the delivery stage, as before its split

BROADCAST = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})
MAX_ATTEMPTS = 12
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


def post_args(item: OutboxItem, channel: str, message: render.Message, job: Job | None) -> dict[str, Any]:
    """The arguments of chat.postMessage for a claimed row (`job`: the job of a status change, or the
    card a claim's note brings up to date)."""
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
        failure = item.kind == OutboxKind.ALERT and job is not None and job.status in BROADCAST  # not a claim's card
        kwargs["reply_broadcast"] = failure or item.kind == OutboxKind.FLAG
    return kwargs


class Sender:
    """Claims, posts and settles one row at a time; shared by the channels' drainers, each on its own thread."""

    def __init__(
        self,
        db: Database,
        client_for: Callable[[str], WebClient],
        *,
        clock: Clock,
        fence: Callable[[], Fence | None],
        stop_by: Mapping[str, str] | None,
        thread_wait: timedelta,
    ) -> None:
        self.db = db
        self.client_for = client_for
        self.clock = clock
        self.fence = fence
        # Sharded delivery (bot/pipeline/buckets.py): a settle checks the fence of the key's bucket
        # too, so a worker that lost the bucket never settles a row its new holder recovers.
        self.fenced_settles = False
        self.stop_by = dict(stop_by or {})  # queue -> provider, for queues whose alerts carry a Stop button
        self.thread_wait = thread_wait  # how long a thread-only note waits before looking for its alert again
        self._blocked_teams: dict[str, datetime] = {}  # token refused: no posts until then
        self._ims: dict[tuple[str, str], str] = {}  # (team, user) -> the IM channel conversations.open gave

    def blocked(self, team: str) -> bool:
        """Whether the workspace's token was refused recently (no posts to it until TOKEN_PAUSE ends)."""
        until = self._blocked_teams.get(team)
        return until is not None and until > self.clock()

    def blocked_teams(self) -> set[str]:
        """The workspaces whose token was refused recently."""
        now = self.clock()
        return {team for team, until in list(self._blocked_teams.items()) if until > now}

    def send(self, item_id: int, stats: Stats, fence: Fence | None) -> Failure | None:
        """Claim (behind `fence`, the lease proof the channel's drainer started with), post and
        settle the row `item_id` (counted in `stats`); returns the failure that settled it, if any,
        for the channel's drainer to stop or wait on. LostLease when the fence no longer holds."""
        claimed = self._claim(item_id, fence)
        if claimed is None:
            return None
        item, thread = claimed
        if item.kind == OutboxKind.STEP:  # a workflow step's completion: a call, no message
            return self.complete_step(item, stats, fence)
        try:
            message, job = message_for(item, stop_by=self.stop_by.get(item.queue, ""))
        except UnknownKind as err:  # never posted, never retried; the channel goes on with its next row
            log.error("outbox_unknown_kind outbox_id=%s channel=%s kind=%r", item.id, item.channel_id, err.kind)
            self._settle_dead(item, str(err), stats, fence)
            return None
        client = self.client_for(item.team_id)
        channel = item.channel_id
        if item.kind == OutboxKind.DM:
            try:
                channel = self.im(client, item.team_id, item.channel_id)
            except Exception as err:  # nothing was posted: opening a conversation posts nothing
                failure = dm_failure(classify(err))
                self.settle_failure(item, failure, stats, fence)
                return failure
        posted = self._post(client, item, post_args(item, channel, message, job), stats, fence)
        if isinstance(posted, Failure):
            return posted
        if self.settle_sent(item, posted, fence):
            stats.sent += 1
        if thread is not None and job is not None:
            self._update_parent(client, item, thread, job)
        if item.kind == OutboxKind.DIGEST and origin_of(item.alert_id) is DigestOrigin.AWAY:
            self._update_cards(client, item)
        return None

    # -- claim -----------------------------------------------------------------------------

    def _claim(self, item_id: int, fence: Fence | None) -> tuple[OutboxItem, JobThread | None] | None:
        now = self.clock()
        with self.db.write() as session:
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

    # -- post ------------------------------------------------------------------------------

    def _post(
        self, client: WebClient, item: OutboxItem, kwargs: dict[str, Any], stats: Stats, fence: Fence | None
    ) -> str | Failure:
        """chat.postMessage: the new message's ts, or the failure settled on the row. A payload Slack
        refuses gets one plain-text fallback, then the row gives up."""
        try:
            response = client.chat_postMessage(**kwargs)
        except Exception as err:  # classified below; every outcome is recorded on the row
            failure = classify(err)
            if failure.kind is not Kind.BAD_PAYLOAD:
                self.settle_failure(item, failure, stats, fence)
                return failure
            try:  # one plain-text fallback, then give up
                response = client.chat_postMessage(**{k: v for k, v in kwargs.items() if k != "blocks"})
            except Exception as err2:
                second = classify(err2)
                self.settle_failure(item, failure if second.kind is Kind.BAD_PAYLOAD else second, stats, fence)
                return second
        return str(response["ts"])

    def im(self, client: WebClient, team: str, user: str) -> str:
        """The IM channel with `user` (conversations.open, scope im:write), cached per process."""
        known = self._ims.get((team, user))
        if known is None:
            response = client.conversations_open(users=user)
            known = str((response.get("channel") or {})["id"])
            self._ims[(team, user)] = known
        return known

    def complete_step(
        self, item: OutboxItem, stats: Stats, fence: Fence | None, *, again: bool = False
    ) -> Failure | None:
        """Complete the workflow step run of a claimed `step` row (bot/pipeline/steps.py) and settle
        the row. Slack's "no such running execution" is the end of it: after an ambiguous call
        (`again`, from recovery) it means that call got through, so the row is sent; on a first call
        the run had ended already (its time ran out), so the row is dead with Slack's word."""
        client = self.client_for(item.team_id)
        try:
            steps.call(client, item)
        except Exception as err:  # classified below; every outcome is recorded on the row
            failure = classify(err)
            if failure.code not in steps.GONE:
                self.settle_failure(item, failure, stats, fence)
                return failure
            if not again:
                log.warning("step_gone outbox_id=%s execution=%s code=%s", item.id, item.channel_id, failure.code)
                self._settle_dead(item, failure.code, stats, fence)
                return None
        if not self.settle_sent(item, "", fence):
            return None
        if again:
            stats.recovered += 1
        else:
            stats.sent += 1
        return None

    # -- settle ----------------------------------------------------------------------------

    def settled(self, session: Session, fence: Fence | None) -> None:
        """The fence check of a settle (sharded delivery only: LostLease when the key's bucket is
        no longer this worker's; the row stays in `sending` for its new holder's recovery)."""
        if self.fenced_settles and fence is not None:
            fence.check(session)

    def settle_sent(self, item: OutboxItem, ts: str, fence: Fence | None) -> bool:
        """sending -> sent as the message `ts` (an alert or a flag then starts its job's thread);
        False when the row was settled meanwhile."""
        with self.db.write() as session:
            self.settled(session, fence)
            row = outbox.sending(session, item.id)
            if row is None:
                return False
            outbox.mark_sent(session, row, ts)
            if row.kind in OPENS_THREAD and row.thread_ts is None:
                threads.start(session, row, ts)
        return True

    def _settle_dead(self, item: OutboxItem, error: str, stats: Stats, fence: Fence | None) -> None:
        """A claimed row that can never be posted (its kind is unknown): dead, with why."""
        with self.db.write() as session:
            self.settled(session, fence)
            row = outbox.sending(session, item.id)
            if row is None:
                return
            outbox.mark_dead(session, row, error)
        stats.dead += 1

    def settle_failure(self, item: OutboxItem, failure: Failure, stats: Stats, fence: Fence | None) -> None:
        """Record a failed call on the row, as bot/slackapi/errors.py classified it: an ambiguous one
        stays in sending for recovery; a gone channel pauses; a refused payload, or the last attempt,
        is dead; anything else is pending again after a backoff."""
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
                self.settled(session, fence)
                row = outbox.sending(session, item.id)
                if row is not None:
                    outbox.note_error(session, row, f"ambiguous: {failure.code}")
            return
        if failure.kind is Kind.TOKEN:
            self._blocked_teams[item.team_id] = self.clock() + TOKEN_PAUSE
        with self.db.write() as session:
            self.settled(session, fence)
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

    # -- the job's card --------------------------------------------------------------------

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
        """After a quiet-hours digest (bot/core/quiet.py): bring the card of each job whose status
        changes it folded up to date, with the job's latest held status; best effort, like every
        parent update."""
        with self.db.read() as session:
            rows = outbox.children(session, digest.id, STATUS_CHANGES)  # a flag leaves the card as it is
            latest = {(r.queue, r.job_id): r for r in rows}
            cards = [(row, threads.of(session, row)) for row in latest.values()]
        for row, thread in cards:
            if thread is not None:
                self._update_parent(client, row, thread, Job.stored(row.payload))
