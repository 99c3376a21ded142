"""Recovery, at the start of each tick of bot/pipeline/deliver.py: a row left in `sending` (a crash,
a timeout, a 5xx: Slack may or may not have the message) is settled by looking its alert id up in
the message metadata of the channel's history, or of the thread's replies, before it is ever posted
again: sent if Slack has it, pending (to post now) if not. A workflow step's completion (kind
`step`) has no message to look for: it is called again, and Slack's answer that the run is not
running any more means the first call got through (bot/pipeline/steps.py).
See docs/reliability.md §Exactly-once delivery. Rows are looked up together per (channel, thread);
a DM's channel is the person's IM. The rows of a channel whose drainer is running are left for a
later round: that drainer may be posting one of them right now. With sharded delivery a worker
recovers only the keys of its buckets, each settle behind the bucket's fence (bot/pipeline/buckets.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient

from bot.core.outbox import OutboxKind
from bot.pipeline.buckets import Share
from bot.pipeline.messages import EVENT_TYPE
from bot.pipeline.send import Sender, Stats, dm_failure
from bot.slackapi.errors import Kind, classify
from bot.store import outbox
from bot.store.lease import Fence, LostLease
from bot.store.tables import OutboxItem

log = logging.getLogger("bot.pipeline.deliver")  # one logger for the delivery stage, as before its split


def recover(
    sender: Sender, after: timedelta, busy: Collection[str] = (), share: Share | None = None
) -> tuple[Stats, set[str]]:
    """Settle the rows in `sending` for longer than `after`: sent if Slack has them, pending (to
    repost) if not. Rows of the channels in `busy` (a drainer is running there) are not touched, nor
    those of keys outside `share` (default: every key); returns the counts and those channels in
    `busy` that had rows to settle."""
    share = share or Share()
    stats = Stats()
    cutoff = sender.clock() - after
    with sender.db.read() as session:
        stuck = outbox.stuck(session, cutoff)
    groups: dict[tuple[str, str, str | None], list[OutboxItem]] = defaultdict(list)
    deferred: set[str] = set()
    for item in stuck:
        if not share.holds(item.channel_id):
            continue
        if item.channel_id in busy:
            deferred.add(item.channel_id)
            continue
        groups[(item.team_id, item.channel_id, item.thread_ts)].append(item)
    for (team, channel, thread_ts), items in groups.items():
        oldest = min(i.sending_started_at or cutoff for i in items) - timedelta(seconds=5)
        try:
            _settle(sender, team, channel, thread_ts, items, oldest, stats, share.fence(channel))
        except LostLease:  # the bucket moved meanwhile: its new holder recovers these rows
            log.warning("lease_lost during recovery channel=%s", channel)
    return stats, deferred


def _settle(
    sender: Sender,
    team: str,
    channel: str,
    thread_ts: str | None,
    items: list[OutboxItem],
    oldest: datetime,
    stats: Stats,
    fence: Fence | None,
) -> None:
    """Settle the stuck rows of one channel (or thread) from what Slack has there since `oldest`."""
    if items[0].kind == OutboxKind.STEP:  # a step's completion: no history to read; Slack completes a run once
        for item in items:
            sender.complete_step(item, stats, fence, again=True)
        return
    client = sender.client_for(team)
    where = channel
    if items[0].kind == OutboxKind.DM:  # channel is the person; their IM holds the messages
        try:
            where = sender.im(client, team, channel)
        except Exception as err:
            failure = dm_failure(classify(err))
            log.warning("recovery_open_failed user=%s code=%s", channel, failure.code)
            if failure.kind is Kind.CHANNEL_GONE:  # never reachable: nothing was posted either
                for item in items:
                    sender.settle_failure(item, failure, stats, fence)
            return
    try:
        found = posted_ids(client, where, thread_ts, oldest)
    except Exception as err:
        failure = classify(err)
        log.warning("recovery_lookup_failed channel=%s code=%s", channel, failure.code)
        if failure.kind is Kind.CHANNEL_GONE:
            for item in items:
                sender.settle_failure(item, failure, stats, fence)
        if failure.code != "missing_scope":
            return
        found = {}  # no history scope: fall back to at-least-once
    for item in items:
        ts = found.get(item.alert_id)
        if ts is None:
            _requeue(sender, item, fence)
        elif sender.settle_sent(item, ts, fence):
            stats.recovered += 1


def _requeue(sender: Sender, item: OutboxItem, fence: Fence | None) -> None:
    with sender.db.write() as session:
        sender.settled(session, fence)
        row = outbox.sending(session, item.id)
        if row is not None:
            outbox.requeue(session, row, sender.clock())


def posted_ids(client: WebClient, channel: str, thread_ts: str | None, oldest: datetime) -> dict[str, str]:
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
