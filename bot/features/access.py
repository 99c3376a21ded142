"""Who may change what, and the audit trail of every change and refusal (docs/reliability.md §Access and isolation).

Everyone in a workspace may read. Changes (subscribe, unsubscribe, mute, unmute, from a command
or a button) need: a channel, not a DM; a user in `[access] admins` (empty: everyone); and a
channel the queue's `channels` allow-list names (empty: any). Every attempt is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.audit import AuditOutcome, Via
from bot.core.config import AppConfig
from bot.core.errors import NotAllowed
from bot.core.ids import CHANNEL_RE
from bot.store import audit
from bot.store.db import Database
from bot.store.session import Session
from providers import QueueConfig

DETAIL_MAX = 500


@dataclass(frozen=True)
class Actor:
    """Who asked, from where: always taken from the signed Slack payload, never from the text."""

    team_id: str
    channel_id: str
    user_id: str
    trigger_id: str = ""
    via: Via = Via.COMMAND


def refusal(config: AppConfig, actor: Actor, queue: QueueConfig) -> str | None:
    """Why `actor` may not change `queue`'s alerts in this channel, or None when allowed."""
    if actor.channel_id.startswith("D"):
        return (
            "subscriptions and mutes belong to channels, not direct messages: "
            "run this in the channel that should get the alerts"
        )
    if not CHANNEL_RE.match(actor.channel_id):
        return "this conversation cannot receive alerts"
    admins = config.access.admins
    if admins and actor.user_id not in admins:
        return "only the bot's admins may change subscriptions and mutes (ask one of them)"
    if queue.channels and actor.channel_id not in queue.channels:
        return f"queue `{queue.name}` may not be subscribed or muted from this channel"
    return None


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    queue: str,
    detail: str = "",
    now: datetime,
    outcome: AuditOutcome = AuditOutcome.OK,
) -> None:
    """Add one audit row in the caller's transaction (so a change and its record commit together)."""
    audit.add(
        session,
        team_id=actor.team_id,
        user_id=actor.user_id,
        channel_id=actor.channel_id,
        action=f"{action} ({actor.via})",
        queue=queue,
        outcome=outcome,
        detail=detail[:DETAIL_MAX],
        trigger_id=actor.trigger_id,
        at=now,
    )


def refuse(db: Database, actor: Actor, action: str, *, queue: str, reason: str, now: datetime) -> NotAllowed:
    """Audit a refusal in its own transaction and return the error to raise."""
    with db.write() as session:
        record(session, actor, action, queue=queue, detail=reason, now=now, outcome=AuditOutcome.REFUSED)
    return NotAllowed(reason)
